package client

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// The write path. A request's frame is queued on its connection; the
// caller that finds no write in progress becomes the writer and writes
// every queued frame, its own and those queued by other callers meanwhile,
// in one system call per batch, until the queue is empty. So concurrent
// requests on one connection (several sends in flight) share system calls,
// and no goroutine hand-off is added: an idle connection writes its frame
// at once on the caller's goroutine, as before. The frames leave in the
// order they were queued, and the edge answers a connection's requests one
// after the other in that order.
//
// The writer frames the text messages itself (masked, as RFC 6455 wants of
// a client) and writes them to the socket underneath the WebSocket
// library, which writes only control frames (pongs, the close frame), each
// in one write call: writes to a net.Conn (and a tls.Conn) are atomic with
// respect to each other, so the two never interleave within a frame.

// writeBatch is the most the writer puts into one write call.
const writeBatch = 64 << 10

// queueAll adds frames to cn's write queue and, unless another caller is
// writing, writes the queue; the frames go out in this order, in one write
// call when they fit in writeBatch. A nil error means the frames were
// queued: when a write fails the socket is closed, so the reader ends and
// cn.done tells everyone waiting for a reply. errDisconnected means they
// may or may not have been written.
func (cn *conn) queueAll(frames ...[]byte) error {
	cn.wmu.Lock()
	if cn.wbroken {
		cn.wmu.Unlock()
		return errDisconnected
	}
	cn.wq = append(cn.wq, frames...)
	if cn.writing {
		cn.wmu.Unlock()
		return nil
	}
	cn.writing = true
	for {
		frames := cn.wq
		cn.wq = cn.wspare[:0]
		cn.wmu.Unlock()
		err := cn.writeFrames(frames)
		clear(frames)
		cn.wmu.Lock()
		cn.wspare = frames[:0]
		if err != nil {
			cn.wbroken = true
			cn.writing = false
			cn.wq = nil
			cn.wmu.Unlock()
			cn.c.stats.writeErrors.Add(1)
			cn.ws.Close()
			return errDisconnected
		}
		if len(cn.wq) == 0 {
			cn.writing = false
			cn.wmu.Unlock()
			return nil
		}
	}
}

// stopWrites refuses every later frame (the connection is closing).
func (cn *conn) stopWrites() {
	cn.wmu.Lock()
	cn.wbroken = true
	cn.wmu.Unlock()
}

// writeFrames writes frames as masked text messages in as few write calls
// as writeBatch allows. Only the current writer calls it.
func (cn *conn) writeFrames(frames [][]byte) error {
	nc := cn.ws.NetConn()
	if d := cn.writeDeadline(); !d.IsZero() {
		_ = nc.SetWriteDeadline(d)
	}
	buf := cn.wbuf[:0]
	defer func() {
		if cap(buf) <= writeBatch+1024 {
			cn.wbuf = buf[:0]
		}
	}()
	for i, f := range frames {
		buf = appendClientFrame(buf, f, rand.Uint32())
		if len(buf) < writeBatch && i < len(frames)-1 {
			continue
		}
		cn.c.stats.writes.Add(1)
		if cn.rc != nil {
			if err := rawWrite(cn.rc, buf); err != nil {
				return err
			}
		} else if _, err := nc.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	cn.c.stats.frames.Add(uint64(len(frames)))
	return nil
}

// writeDeadline returns the write deadline to set, or the zero time when
// the one set before still leaves at least Config.RequestTimeout: moving a
// socket's deadline updates a runtime timer, which costs as much as a small
// write. A new deadline is 1.5 RequestTimeout away, so a stuck write is cut
// after 1 to 1.5 RequestTimeout.
func (cn *conn) writeDeadline() time.Time {
	wt := cn.c.cfg.RequestTimeout
	now := time.Now()
	if cn.wdl.Sub(now) >= wt {
		return time.Time{}
	}
	cn.wdl = now.Add(wt + wt/2)
	return cn.wdl
}

// appendClientFrame appends payload to b as one final text frame, masked
// with key.
func appendClientFrame(b, payload []byte, key uint32) []byte {
	const finText = 0x80 | 0x1
	const masked = 0x80
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, finText, masked|byte(n))
	case n <= 0xffff:
		b = append(b, finText, masked|126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, masked|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], key)
	b = append(b, k[:]...)
	start := len(b)
	b = append(b, payload...)
	mask(b[start:], k)
	return b
}

// mask XORs p with the repeated key k, eight bytes at a time.
func mask(p []byte, k [4]byte) {
	k8 := uint64(binary.LittleEndian.Uint32(k[:]))
	k8 |= k8 << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for ; i < len(p); i++ {
		p[i] ^= k[i&3]
	}
}
