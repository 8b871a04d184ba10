package client_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// netCtl is a Dialer for tests that play the network: it can refuse new
// connections (offline), cut the open ones, drop or duplicate the edge's
// pushes on the way in (each push is a whole unfragmented text frame), and
// cut a connection when a frame the test names arrives.
type netCtl struct {
	offline atomic.Bool
	// push decides how many copies of a pushed message reach the client:
	// 0 drops it, 2 duplicates it. Nil means 1.
	push atomic.Pointer[func(natter.Message) int]
	// cutOn, when set, cuts the connection instead of delivering the first
	// frame that contains it; then it is cleared.
	cutOn atomic.Pointer[[]byte]

	mu    sync.Mutex
	conns []*filterConn

	smu  sync.Mutex
	sent []protocol.Request // the send frames the client wrote, in order
}

// sends returns the send frames the client has written so far.
func (n *netCtl) sends() []protocol.Request {
	n.smu.Lock()
	defer n.smu.Unlock()
	return append([]protocol.Request(nil), n.sent...)
}

var errOffline = errors.New("test network is offline")

func (n *netCtl) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if n.offline.Load() {
			return nil, errOffline
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		fc := &filterConn{Conn: c, n: n}
		n.mu.Lock()
		n.conns = append(n.conns, fc)
		n.mu.Unlock()
		return fc, nil
	}}
}

// cut closes every connection dialed so far and returns how many.
func (n *netCtl) cut() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := len(n.conns)
	for _, c := range n.conns {
		_ = c.Conn.Close()
	}
	n.conns = nil
	return k
}

// stall makes the connections dialed so far go silent: whatever the edge
// sends (frames, pings) is swallowed, as by a dead network path.
func (n *netCtl) stall() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.stalled.Store(true)
	}
}

func (n *netCtl) setPush(f func(natter.Message) int) { n.push.Store(&f) }

// filterConn passes the HTTP upgrade response through and then parses the
// server's WebSocket frames (unmasked), rewriting the stream frame by frame.
type filterConn struct {
	net.Conn
	n        *netCtl
	stalled  atomic.Bool
	upgraded bool
	in, out  []byte

	wmu       sync.Mutex
	wupgraded bool   // the client's upgrade request has been written
	win       []byte // written bytes not yet parsed into frames
}

// Write passes the client's bytes on and records its send frames (masked
// client frames, parsed and unmasked here) in netCtl.sent.
func (c *filterConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.win = append(c.win, p...)
	c.parseWritten()
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

func (c *filterConn) parseWritten() {
	if !c.wupgraded {
		i := bytes.Index(c.win, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		c.win = c.win[i+4:]
		c.wupgraded = true
	}
	for {
		hdr, size, ok := frameSize(c.win)
		if !ok || len(c.win) < hdr+4+size || c.win[1]&0x80 == 0 {
			return // incomplete, or not a masked client frame
		}
		key, payload := c.win[hdr:hdr+4], append([]byte(nil), c.win[hdr+4:hdr+4+size]...)
		text := c.win[0] == 0x81 // FIN + text: a whole message
		c.win = c.win[hdr+4+size:]
		for i := range payload {
			payload[i] ^= key[i%4]
		}
		if r, err := protocol.Decode(payload); text && err == nil && r.Op == protocol.OpSend {
			c.n.smu.Lock()
			c.n.sent = append(c.n.sent, *r)
			c.n.smu.Unlock()
		}
	}
}

func (c *filterConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		buf := make([]byte, 32<<10)
		k, err := c.Conn.Read(buf)
		if c.stalled.Load() {
			if err != nil {
				return 0, err
			}
			continue
		}
		c.in = append(c.in, buf[:k]...)
		if perr := c.process(); perr != nil {
			_ = c.Conn.Close()
			return 0, perr
		}
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
	k := copy(p, c.out)
	c.out = c.out[k:]
	return k, nil
}

func (c *filterConn) process() error {
	if !c.upgraded {
		i := bytes.Index(c.in, []byte("\r\n\r\n"))
		if i < 0 {
			return nil
		}
		c.out = append(c.out, c.in[:i+4]...)
		c.in = c.in[i+4:]
		c.upgraded = true
	}
	for {
		hdr, size, ok := frameSize(c.in)
		if !ok || len(c.in) < hdr+size {
			return nil
		}
		frame := c.in[:hdr+size]
		c.in = c.in[hdr+size:]
		if cut := c.n.cutOn.Load(); cut != nil && bytes.Contains(frame, *cut) && c.n.cutOn.CompareAndSwap(cut, nil) {
			return errors.New("test network cut the connection")
		}
		copies := 1
		if f := c.n.push.Load(); f != nil && frame[0] == 0x81 { // FIN + text: a whole message
			if sf, err := protocol.DecodeServer(frame[hdr:]); err == nil && sf.Message != nil {
				copies = (*f)(*sf.Message)
			}
		}
		for range copies {
			c.out = append(c.out, frame...)
		}
	}
}

// frameSize parses a server frame header: its length and the payload's.
func frameSize(b []byte) (hdr, size int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	switch l := int(b[1] & 0x7f); l {
	case 126:
		if len(b) < 4 {
			return 0, 0, false
		}
		return 4, int(binary.BigEndian.Uint16(b[2:4])), true
	case 127:
		if len(b) < 10 {
			return 0, 0, false
		}
		return 10, int(binary.BigEndian.Uint64(b[2:10])), true
	default:
		return 2, l, true
	}
}
