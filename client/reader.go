package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
)

// The read path. The client reads the edge's frames itself, as it writes
// its own (writer.go): each connection has one buffer that every read
// call fills with as much as has arrived, so frames that arrive together
// (a batch's acks, a burst of pushes) are taken with one read(2), and each
// frame is handed on in place, without a copy or an allocation. A frame
// larger than the buffer gets a buffer of its own; a fragmented message is
// assembled. Control frames are returned as they come (pings are answered
// and closes echoed by readLoop).
//
// The WebSocket library does the handshake, through a handoff connection
// that gives it one byte per read call: its buffered reader then never
// holds bytes past the handshake's response, and the first frame is read
// here. Where the handoff cannot sit under the library's reader (wss with
// the library's own TLS, which decrypts whole records ahead), the library
// reads the frames as before (libraryFrame).

// readBufSize is the reader's buffer: what one read call takes at most.
const readBufSize = 8 << 10

// maxKeptReadBuffer bounds the buffer of a fragmented message the reader
// keeps between messages; a larger one is dropped after use.
const maxKeptReadBuffer = 64 << 10

// errBadFrame is a frame that breaks RFC 6455 (reserved bits, a masked or
// unknown frame, a bad control frame, a continuation out of place). The
// reader then closes the connection with 1002 (protocol error), and the
// client reconnects.
var errBadFrame = errors.New("client: bad WebSocket frame from the edge")

// WebSocket opcodes (RFC 6455, 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frameReader takes the edge's frames from src.
type frameReader struct {
	src  io.Reader
	buf  []byte // fixed size readBufSize; buf[r:w] is read, not yet taken
	r, w int
	msg  []byte // the fragmented message being assembled
	frag int    // its opcode; 0 when none is
	// A frame larger than buf being read: its payload so far, its length,
	// opcode and fin bit.
	big    []byte
	bigN   uint64
	bigOp  int
	bigFin bool
}

func newFrameReader(src io.Reader) *frameReader {
	return &frameReader{src: src}
}

func badFrame(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadFrame}, args...)...)
}

// next returns the next message: a text or binary message (its fragments
// assembled), or a control frame (opClose, opPing, opPong). data is valid
// until the next call. Errors: the source's, io.ErrUnexpectedEOF for a
// stream that ends inside a frame, errBadFrame.
func (fr *frameReader) next() (op int, data []byte, err error) {
	for {
		op, fin, p, err := fr.frame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case opClose, opPing, opPong:
			return op, p, nil
		case opText, opBinary:
			if fr.frag != 0 {
				return 0, nil, badFrame("a new message inside a fragmented one")
			}
			if fin {
				return op, p, nil
			}
			fr.frag = op
			fr.msg = append(fr.msg[:0], p...)
		case opContinuation:
			if fr.frag == 0 {
				return 0, nil, badFrame("a continuation frame outside a fragmented message")
			}
			fr.msg = append(fr.msg, p...)
			if fin {
				op, data := fr.frag, fr.msg
				fr.frag = 0
				if cap(fr.msg) > maxKeptReadBuffer {
					fr.msg = nil
				}
				return op, data, nil
			}
		default:
			return 0, nil, badFrame("unknown opcode %d", op)
		}
	}
}

// frame returns the next frame; p is valid until the next call. After
// errWouldBlock it can be called again (as can next).
func (fr *frameReader) frame() (op int, fin bool, p []byte, err error) {
	if fr.bigN > 0 {
		return fr.readBig()
	}
	if err := fr.fill(2); err != nil {
		return 0, false, nil, err
	}
	b0, b1 := fr.buf[fr.r], fr.buf[fr.r+1]
	op, fin = int(b0&0xf), b0&0x80 != 0
	switch {
	case b0&0x70 != 0:
		return 0, false, nil, badFrame("reserved bits set (opcode %d)", op)
	case b1&0x80 != 0:
		return 0, false, nil, badFrame("a masked frame from the server")
	}
	n, hdr := uint64(b1&0x7f), 2
	switch n {
	case 126:
		if err := fr.fill(4); err != nil {
			return 0, false, nil, err
		}
		n, hdr = uint64(binary.BigEndian.Uint16(fr.buf[fr.r+2:])), 4
	case 127:
		if err := fr.fill(10); err != nil {
			return 0, false, nil, err
		}
		n, hdr = binary.BigEndian.Uint64(fr.buf[fr.r+2:]), 10
		if n>>63 != 0 {
			return 0, false, nil, badFrame("payload length with the top bit set")
		}
	}
	if op >= opClose && (!fin || n > 125) {
		return 0, false, nil, badFrame("a fragmented or long control frame (opcode %d, %d bytes)", op, n)
	}
	if n <= uint64(len(fr.buf)-hdr) {
		end := hdr + int(n)
		if err := fr.fill(end); err != nil {
			return 0, false, nil, err
		}
		p = fr.buf[fr.r+hdr : fr.r+end]
		fr.r += end
		return op, fin, p, nil
	}
	// Larger than the buffer: a buffer of its own, grown as the payload
	// arrives (a length alone allocates nothing).
	fr.r += hdr
	fr.big = make([]byte, 0, min(n, 1<<20))
	fr.big = append(fr.big, fr.buf[fr.r:fr.w]...)
	fr.r, fr.w = 0, 0
	fr.bigN, fr.bigOp, fr.bigFin = n, op, fin
	return fr.readBig()
}

// readBig reads the rest of a frame larger than the buffer. It can be
// called again after errWouldBlock.
func (fr *frameReader) readBig() (op int, fin bool, p []byte, err error) {
	p = fr.big
	for uint64(len(p)) < fr.bigN {
		if len(p) == cap(p) {
			p = append(p, 0)[:len(p)]
		}
		m, err := fr.src.Read(p[len(p):min(uint64(cap(p)), fr.bigN)])
		p = p[:len(p)+m]
		if err != nil && uint64(len(p)) < fr.bigN {
			fr.big = p
			return 0, false, nil, eofInFrame(err)
		}
	}
	op, fin = fr.bigOp, fr.bigFin
	fr.big, fr.bigN = nil, 0
	return op, fin, p, nil
}

// fill makes buf[r:w] hold at least k bytes (k <= len(buf)), reading as
// much as the source has.
func (fr *frameReader) fill(k int) error {
	if fr.buf == nil {
		fr.buf = make([]byte, readBufSize)
	}
	if fr.r == fr.w {
		fr.r, fr.w = 0, 0
	}
	for fr.w-fr.r < k {
		if fr.r+k > len(fr.buf) {
			fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
			fr.r = 0
		}
		m, err := fr.src.Read(fr.buf[fr.w:])
		fr.w += m
		if err != nil && fr.w-fr.r < k {
			if fr.w > fr.r {
				return eofInFrame(err)
			}
			return err
		}
	}
	return nil
}

func eofInFrame(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// closeFrame decodes a close frame's payload as the WebSocket library
// does: no payload is 1005 (no status).
func closeFrame(p []byte) (*websocket.CloseError, error) {
	switch {
	case len(p) == 0:
		return &websocket.CloseError{Code: websocket.CloseNoStatusReceived}, nil
	case len(p) == 1:
		return nil, badFrame("a close frame of one byte")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return nil, badFrame("close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return nil, badFrame("a close reason that is not UTF-8")
	}
	return &websocket.CloseError{Code: code, Text: string(p[2:])}, nil
}

// validCloseCode is RFC 6455 7.4's list of codes a peer may send.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// handoff is the connection under the WebSocket library while it does the
// handshake (see above): with trickle set it gives the library one byte
// per read call and keeps what it read ahead for the frame reader, which
// reads through it afterwards.
//
// With raw set, reads are read(2) calls on fd, made by readLoop inside the
// socket's RawConn.Read: a read that returns less than it asked for found
// the socket empty, so the next read waits for the poller
// (errWouldBlock) instead of making the read(2) that would return EAGAIN.
// That is safe only within one RawConn.Read call, which keeps the
// poller's readiness between its waits (a new RawConn.Read clears it).
type handoff struct {
	net.Conn
	ahead   []byte // read from Conn, not handed out yet
	trickle bool
	scratch []byte
	raw     bool
	fd      int
	wait    bool        // raw: the last read(2) was short
	closed  atomic.Bool // Close was called: raw reads stop
	onRead  func(n int) // a test's hook, called with each read's bytes
}

// Close closes the socket; a raw read loop ends at its next read. The
// loop holds the socket inside RawConn.Read, and closing a socket waits
// for that (internal/poll), so with raw reads the socket is closed
// without waiting: the reader may be held by back-pressure (waitRoom) or
// a pong's write, and a writer that saw a write fail must not wait for it.
func (h *handoff) Close() error {
	h.closed.Store(true)
	if h.raw {
		go h.Conn.Close()
		return nil
	}
	return h.Conn.Close()
}

// errWouldBlock ends a raw read: wait for the poller, then read again.
var errWouldBlock = errors.New("client: no data yet")

func (h *handoff) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if h.trickle {
		p = p[:1]
	}
	if len(h.ahead) > 0 {
		n := copy(p, h.ahead)
		if h.ahead = h.ahead[n:]; len(h.ahead) == 0 && !h.trickle {
			h.ahead = nil // the handshake's buffer is not kept
		}
		return n, nil
	}
	if h.raw {
		return h.rawRead(p)
	}
	if !h.trickle {
		n, err := h.Conn.Read(p)
		if n > 0 && h.onRead != nil {
			h.onRead(n)
		}
		return n, err
	}
	if h.scratch == nil {
		h.scratch = make([]byte, 1024)
	}
	n, err := h.Conn.Read(h.scratch)
	if n == 0 {
		return 0, err
	}
	p[0] = h.scratch[0]
	h.ahead = h.scratch[1:n]
	return 1, nil
}

func (h *handoff) rawRead(p []byte) (int, error) {
	if h.closed.Load() {
		return 0, net.ErrClosed
	}
	if h.wait {
		h.wait = false
		return 0, errWouldBlock
	}
	for {
		// A raw system call: the socket does not block, and unlike
		// syscall.Read it does not tell the scheduler, which would wake
		// its monitor thread (sysmon) after every idle spell.
		n, errno := sysRead(uintptr(h.fd), p)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return 0, errWouldBlock
		case errno != 0:
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: h.LocalAddr(), Addr: h.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
		case n == 0:
			return 0, io.EOF
		}
		h.wait = n < len(p)
		if h.onRead != nil {
			h.onRead(n)
		}
		return n, nil
	}
}

// rawConn returns the socket's RawConn when the client can read and write
// through it with raw system calls (a TCP socket without TLS), else nil.
func (h *handoff) rawConn() syscall.RawConn {
	if !rawSyscalls || useLibraryReader.Load() {
		return nil
	}
	sc, ok := h.Conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWrite writes b with raw write(2) calls inside rc.Write, waiting for
// the poller while the socket's buffer is full (the write deadline holds
// there).
func rawWrite(rc syscall.RawConn, b []byte) error {
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			r, e := sysWrite(fd, b)
			switch e {
			case 0:
				b = b[r:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
	}
	return err
}

// handoffDialer returns a copy of d whose connections are handoffs, and
// whether frames can be read through them: not for a wss URL without
// d.NetDialTLSContext (the library's TLS sits above the dialed
// connection) nor with a proxy for wss.
func handoffDialer(d websocket.Dialer, wss bool, hs **handoff) (websocket.Dialer, bool) {
	wrap := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			h := &handoff{Conn: c, trickle: true}
			*hs = h
			return h, nil
		}
	}
	if wss {
		if d.NetDialTLSContext == nil || d.Proxy != nil {
			return d, false
		}
		d.NetDialTLSContext = wrap(d.NetDialTLSContext)
		return d, true
	}
	switch {
	case d.NetDialContext != nil:
		d.NetDialContext = wrap(d.NetDialContext)
	case d.NetDial != nil:
		nd := d.NetDial
		d.NetDial = nil
		d.NetDialContext = wrap(func(_ context.Context, network, addr string) (net.Conn, error) { return nd(network, addr) })
	default:
		d.NetDialContext = wrap((&net.Dialer{}).DialContext)
	}
	return d, true
}
