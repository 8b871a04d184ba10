package edge

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
)

// rawClient is the client side of a session without a WebSocket library:
// it writes pre-masked frames and reads the server's unmasked ones into one
// buffer, so that what a benchmark counts is the edge's work (the
// allocations of the process are the server's, plus NATS's).
type rawClient struct {
	nc  net.Conn
	r   *bufio.Reader
	buf []byte
}

func newRawClient(nc net.Conn) *rawClient {
	return &rawClient{nc: nc, r: bufio.NewReaderSize(nc, 4096), buf: make([]byte, 0, 4096)}
}

// maskedFrame frames payload as one final, masked client text frame
// (RFC 6455 section 5.2) with the zero mask key, which leaves the payload
// as it is (so a benchmark can patch it in place).
func maskedFrame(payload []byte) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// next reads the server's next frame and returns its payload (valid until
// the next call).
func (c *rawClient) next() ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.r, l[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.r, l[:]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint64(l[:]))
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	_, err := io.ReadFull(c.r, c.buf)
	return c.buf, err
}

// roundTrip writes frame and reads the reply, failing b unless it is a
// result.
func (c *rawClient) roundTrip(b *testing.B, frame []byte) {
	if _, err := c.nc.Write(frame); err != nil {
		b.Fatal(err)
	}
	res, err := c.next()
	if err != nil {
		b.Fatal(err)
	}
	if len(res) < 10 || string(res[:9]) != `{"t":"res` {
		b.Fatalf("reply %s", res)
	}
}

// BenchmarkFramePing is the edge's cost of one request frame without the
// mesh: a ping frame read from the socket, decoded, dispatched, answered
// (encode and write) and its reply read by the client, one at a time on a
// real socket.
func BenchmarkFramePing(b *testing.B) {
	e := testEdge(b, Config{PingInterval: time.Hour, Rate: 1e9, Burst: 1e9})
	s, client := dialSession(b, e, "bench")
	go s.readLoop()
	c := newRawClient(client.NetConn())
	frame := maskedFrame([]byte(`{"op":"ping","id":"r1"}`))
	c.roundTrip(b, frame)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for range b.N {
		c.roundTrip(b, frame)
	}
	reportCPU(b, cpu)
}

// BenchmarkFrameSend is the edge's cost of one send: a send frame in
// (a new cmid each time), the checks, the append to the log on an embedded
// JetStream and the ack frame out, one at a time on a real socket. The
// members of the direct conversation come from a stand-in of the
// conversations service on NATS, once (the member cache keeps them).
// Besides the edge, the process runs the NATS server (the append's
// publish and its stream store): compare its allocations and time between
// versions of the edge, not as the edge's alone.
func BenchmarkFrameSend(b *testing.B) {
	e := newSendEdge(b, func(string) {})
	s, client := dialSession(b, e, "alice")
	go s.readLoop()
	c := newRawClient(client.NetConn())
	conv := natter.DirectID("alice", "bob")
	const digits = 9
	payload := []byte(`{"op":"send","id":"r1","conv":"` + conv + `","cmid":"c000000000","body":"hello bob, how are you?","first":true}`)
	frame := maskedFrame(payload)
	at := len(frame) - len(payload) + len(`{"op":"send","id":"r1","conv":"`+conv+`","cmid":"c`)
	n := 0
	send := func() {
		n++
		copy(frame[at:at+digits], strconv.AppendInt(make([]byte, 0, digits), int64(1e9+n), 10)[1:])
		c.roundTrip(b, frame)
	}
	send()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for range b.N {
		send()
	}
	reportCPU(b, cpu)
}

// processCPU is the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since start (cpu-ns/op):
// on a shared machine a steadier figure than the wall time, which waits
// for a core at every hand-off between client, edge and NATS.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
