package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// serverFrame is one frame as a server writes it (unmasked).
func serverFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = []byte{b0, byte(n)}
	case n <= 0xffff:
		b = []byte{b0, 126, byte(n >> 8), byte(n)}
	default:
		b = []byte{b0, 127}
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// chunked hands out src in reads of the sizes next gives; it counts the
// read calls.
type chunked struct {
	src   []byte
	next  func() int
	reads int
}

func (c *chunked) Read(p []byte) (int, error) {
	c.reads++
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.src), c.next())
	copy(p, c.src[:n])
	c.src = c.src[n:]
	return n, nil
}

type gotFrame struct {
	op   int
	data string
}

// readAll reads messages until the source ends.
func readAll(t *testing.T, fr *frameReader) []gotFrame {
	t.Helper()
	var out []gotFrame
	for {
		op, p, err := fr.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		out = append(out, gotFrame{op, string(p)})
	}
}

// stream is frames of every kind the edge sends: small and 16-bit and
// 64-bit lengths, one larger than the reader's buffer, a fragmented
// message with a ping between its fragments, control frames.
func stream() ([]byte, []gotFrame) {
	var b []byte
	var want []gotFrame
	add := func(op byte, data string) {
		b = append(b, serverFrame(op, true, []byte(data))...)
		want = append(want, gotFrame{int(op), data})
	}
	for i := range 40 {
		add(opText, fmt.Sprintf(`{"t":"res","id":"%d","data":{"seq":%d}}`, i, i))
	}
	add(opText, strings.Repeat("m", 300))
	add(opPing, "p1")
	add(opBinary, strings.Repeat("b", 70_000)) // 64-bit length, > readBufSize
	add(opText, strings.Repeat("x", readBufSize-4))
	// Fragmented: text "ab" + "cd" + "ef", a ping between.
	b = append(b, serverFrame(opText, false, []byte("ab"))...)
	b = append(b, serverFrame(opContinuation, false, []byte("cd"))...)
	b = append(b, serverFrame(opPing, true, []byte("p2"))...)
	b = append(b, serverFrame(opContinuation, true, []byte("ef"))...)
	want = append(want, gotFrame{opPing, "p2"}, gotFrame{opText, "abcdef"})
	add(opPong, "")
	add(opText, "last")
	return b, want
}

// TestFrameReaderManyFramesPerRead: frames that arrive together are taken
// from one read call, in order, each as sent. Fails when the reader reads
// per frame (more read calls) or loses the order.
func TestFrameReaderManyFramesPerRead(t *testing.T) {
	var b []byte
	var want []gotFrame
	for i := range 40 {
		s := fmt.Sprintf(`{"t":"msg","msg":{"seq":%d,"body":"%s"}}`, i, strings.Repeat("y", 150))
		b = append(b, serverFrame(opText, true, []byte(s))...)
		want = append(want, gotFrame{opText, s})
	}
	if len(b) > readBufSize {
		t.Fatalf("test frames take %d bytes, more than one buffer", len(b))
	}
	src := &chunked{src: b, next: func() int { return len(b) }}
	got := readAll(t, newFrameReader(src))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames differ:\n got %.300v\nwant %.300v", got, want)
	}
	if src.reads != 2 { // one with every frame, one that says EOF
		t.Fatalf("%d read calls for %d frames (%d bytes) that arrived together, want 2", src.reads, len(want), len(b))
	}
}

// TestFrameReaderSplitReads: the same stream read whole, a byte at a time
// and in random pieces gives the same messages: frames split across reads
// anywhere (in the header, the extended length, the payload), a frame
// larger than the buffer, a fragmented message with a ping inside.
func TestFrameReaderSplitReads(t *testing.T) {
	b, want := stream()
	r := rand.New(rand.NewPCG(1, 2))
	for name, next := range map[string]func() int{
		"whole":  func() int { return len(b) },
		"bytes":  func() int { return 1 },
		"random": func() int { return 1 + r.IntN(3000) },
		"odd":    func() int { return 1 + 2*r.IntN(7) },
	} {
		t.Run(name, func(t *testing.T) {
			got := readAll(t, newFrameReader(&chunked{src: b, next: next}))
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("message %d: op %d, %d bytes %.40q; want op %d, %d bytes %.40q", i, got[i].op, len(got[i].data), got[i].data, want[i].op, len(want[i].data), want[i].data)
				}
			}
		})
	}
}

// TestFrameReaderBadFrames: every frame that breaks RFC 6455 is
// errBadFrame (readFrame then closes with 1002), and a stream that ends
// inside a frame is io.ErrUnexpectedEOF. Fails when any is taken as a
// message.
func TestFrameReaderBadFrames(t *testing.T) {
	ok := serverFrame(opText, true, []byte("ok"))
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"reserved bit":           {[]byte{0x80 | 0x40 | opText, 1, 'x'}, errBadFrame},
		"masked":                 {[]byte{0x80 | opText, 0x80 | 1, 1, 2, 3, 4, 'x'}, errBadFrame},
		"unknown opcode":         {serverFrame(0x3, true, []byte("x")), errBadFrame},
		"control opcode 0xb":     {serverFrame(0xb, true, nil), errBadFrame},
		"long ping":              {serverFrame(opPing, true, bytes.Repeat([]byte("p"), 126)), errBadFrame},
		"fragmented ping":        {serverFrame(opPing, false, []byte("p")), errBadFrame},
		"stray continuation":     {serverFrame(opContinuation, true, []byte("x")), errBadFrame},
		"text inside fragmented": {append(serverFrame(opText, false, []byte("a")), serverFrame(opText, true, []byte("b"))...), errBadFrame},
		"close of one byte":      {serverFrame(opClose, true, []byte{3}), errBadFrame},
		"close code 1005":        {serverFrame(opClose, true, []byte{0x03, 0xed}), errBadFrame},
		"close reason not UTF-8": {serverFrame(opClose, true, []byte{0x03, 0xe8, 0xff}), errBadFrame},
		"length top bit":         {[]byte{0x80 | opBinary, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, errBadFrame},
		"ends in header":         {[]byte{0x80 | opText}, io.ErrUnexpectedEOF},
		"ends in length":         {[]byte{0x80 | opText, 126, 1}, io.ErrUnexpectedEOF},
		"ends in payload":        {[]byte{0x80 | opText, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
		"ends in a big payload":  {append([]byte{0x80 | opText, 127, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 20_000)...), io.ErrUnexpectedEOF},
	} {
		t.Run(name, func(t *testing.T) {
			b := append(append([]byte(nil), ok...), c.b...)
			fr := newFrameReader(&chunked{src: b, next: func() int { return 1 + len(b)/3 }})
			op, p, err := fr.next()
			if err != nil || op != opText || string(p) != "ok" {
				t.Fatalf("first frame: %d %q %v", op, p, err)
			}
			op, p, err = fr.next()
			if err == nil && op == opClose {
				_, err = closeFrame(p)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got op %d (%d bytes), err %v; want %v", op, len(p), err, c.want)
			}
		})
	}
}

// TestCloseFrame: a close frame decodes as the library decodes it.
func TestCloseFrame(t *testing.T) {
	ce, err := closeFrame(websocket.FormatCloseMessage(4008, "slow consumer"))
	if err != nil || ce.Code != 4008 || ce.Text != "slow consumer" {
		t.Fatalf("got %+v, %v", ce, err)
	}
	if ce, err := closeFrame(nil); err != nil || ce.Code != websocket.CloseNoStatusReceived {
		t.Fatalf("empty: got %+v, %v", ce, err)
	}
}

// TestResOf: the reader splits a res frame as the edge writes it, and only
// that, for the ack's fast path.
func TestResOf(t *testing.T) {
	id, v, ok := resOf([]byte(`{"t":"res","id":"1z","data":{"id":"m","conv":"d","seq":3,"ts":4}}`))
	if !ok || string(id) != "1z" || string(v) != `{"id":"m","conv":"d","seq":3,"ts":4}` {
		t.Fatalf("got %q %q %v", id, v, ok)
	}
	for _, f := range []string{
		``, `}`, `{"t":"res","id":"","data":{}}`, `{"t":"res","id":"a\"b","data":{}}`, `{"t":"res","id":"A","data":{}}`,
		`{"t":"res","id":"1","data":{}} `, `{"t":"res", "id":"1","data":{}}`, `{"t":"err","id":"1","data":{}}`,
	} {
		if _, _, ok := resOf([]byte(f)); ok {
			t.Errorf("%q split", f)
		}
	}
}

// fakeEdge is a WebSocket peer that speaks just enough of the protocol for
// Dial (hello, an empty sync reply) and then runs script on each
// connection (its index from 0).
func fakeEdge(t *testing.T, script func(i int, ws *websocket.Conn)) string {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{Subprotocols: []string{protocol.Subprotocol}}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		i := int(n.Add(1)) - 1
		_ = ws.WriteMessage(websocket.TextMessage, protocol.Hello(protocol.HelloFrame{User: "u", Session: fmt.Sprint("s", i), PingMS: 30_000, MaxBody: 4096}))
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		req, err := protocol.Decode(data)
		if err != nil || req.Op != protocol.OpSync {
			t.Errorf("connection %d: first request %q: %v", i, data, err)
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, protocol.Result(req.ID, protocol.SyncResult{Convs: []protocol.SyncConv{}}))
		script(i, ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestBrokenFrameClosesWith1002: a frame that breaks RFC 6455 (here one
// with a reserved bit set) makes the client close the connection with
// 1002 (protocol error), naming the problem, and reconnect. Fails when
// the frame is taken as a message, or the client closes without 1002.
func TestBrokenFrameClosesWith1002(t *testing.T) {
	closed := make(chan *websocket.CloseError, 2)
	url := fakeEdge(t, func(i int, ws *websocket.Conn) {
		if i > 0 {
			_, _, _ = ws.ReadMessage() // hold until the client goes
			return
		}
		// A frame with RSV1 set, written raw; then the client's answer.
		if _, err := ws.NetConn().Write([]byte{0x80 | 0x40 | opText, 2, '{', '}'}); err != nil {
			t.Error(err)
			return
		}
		for {
			_, _, err := ws.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				closed <- ce
				return
			}
			if err != nil {
				t.Errorf("the edge read %v, not a close frame", err)
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{URLs: []string{url}, Token: "t", Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case ce := <-closed:
		if ce.Code != websocket.CloseProtocolError || !strings.Contains(ce.Text, "reserved bits") {
			t.Fatalf("the client closed with %d %q, want 1002 naming the reserved bits", ce.Code, ce.Text)
		}
	case <-ctx.Done():
		t.Fatal("the client did not close the connection")
	}
	for c.Stats().Reconnects == 0 {
		if ctx.Err() != nil {
			t.Fatal("the client did not reconnect")
		}
		time.Sleep(5 * time.Millisecond) // polled with a deadline
	}
	if s := c.Stats(); s.Pushes != 0 {
		t.Fatalf("the broken frame was taken as a push: %+v", s)
	}
}

// FuzzAckFastPath: the reader's fast path for a batch's ack (resOf, then
// protocol.DecodeAck) gives what the full decode gives (DecodeServer, then
// encoding/json into an Ack) for every frame it takes.
func FuzzAckFastPath(f *testing.F) {
	for _, s := range []string{
		`{"t":"res","id":"1z","data":{"id":"m_1","conv":"d_a","seq":3,"ts":17}}`,
		`{"t":"res","id":"1z","data":{"id":"m_1","conv":"d_a","seq":3,"ts":17,"dup":true}}`,
		`{"t":"res","id":"a","data":{"id":"m\u00e9","conv":"d","seq":18446744073709551615,"ts":-1}}`,
		`{"t":"res","id":"a","data":{ "seq" : 1 , "id":"x\"y"}}`,
		`{"t":"res","id":"a","data":{"seq":1.5}}`,
		`{"t":"res","id":"a","data":{"seq":1}}}`,
		`{"t":"res","id":"a","data":{"other":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		id, v, ok := resOf(frame)
		if !ok {
			return
		}
		var fast natter.Ack
		if !protocol.DecodeAck(v, &fast) {
			return
		}
		sf, err := protocol.DecodeServer(frame)
		if err != nil {
			t.Fatalf("fast path took %q, DecodeServer refuses it: %v", frame, err)
		}
		var slow natter.Ack
		if err := json.Unmarshal(sf.Data, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses the data: %v", frame, err)
		}
		if sf.T != protocol.FrameRes || sf.ID != string(id) || fast != slow {
			t.Fatalf("%q: fast %q %+v, full %s %q %+v", frame, id, fast, sf.T, sf.ID, slow)
		}
	})
}

// TestRawWriteWaitsForRoom: a raw write larger than the socket's buffers
// waits for the peer to read (EAGAIN, then the poller) and delivers every
// byte in order; with the peer not reading, the write deadline ends it.
// Fails when a full buffer ends the write or loses bytes.
func TestRawWriteWaitsForRoom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// The peer does not read: the deadline ends the write.
	_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if err := rawWrite(rc, make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write to a peer that does not read: %v, want the deadline", err)
	}
	// A fresh pair: the peer reads after the buffers filled up.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rc2, _ := c2.(*net.TCPConn).SyscallConn()
	want := make([]byte, 32<<20)
	for i := range want {
		want[i] = byte(i * 7 / 5)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the writer fill the buffers first
		b, _ := io.ReadAll(s2)
		got <- b
	}()
	_ = c2.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if err := rawWrite(rc2, want); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(want))
	}
}

// FuzzFrameReader: any byte stream gives the same messages and the same
// end (the error) read whole as read a few bytes at a time, and never a
// panic.
func FuzzFrameReader(f *testing.F) {
	b, _ := stream()
	f.Add(b[:300], uint8(3))
	f.Add(append(serverFrame(opText, false, []byte("ab")), serverFrame(opContinuation, true, []byte("c"))...), uint8(1))
	f.Add([]byte{0x81, 126, 0, 200}, uint8(2))
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0x40, 0}, uint8(5))
	f.Add([]byte{0x88, 2, 0x03, 0xe8, 0x89, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		read := func(next func() int) (out []string) {
			fr := newFrameReader(&chunked{src: data, next: next})
			for range 1000 {
				op, p, err := fr.next()
				if err != nil {
					return append(out, fmt.Sprint("err ", errors.Is(err, errBadFrame), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF)))
				}
				out = append(out, fmt.Sprintf("%d %q", op, p))
			}
			return out
		}
		whole := read(func() int { return len(data) + 1 })
		pieces := read(func() int { return 1 + int(piece%17) })
		if fmt.Sprint(whole) != fmt.Sprint(pieces) {
			t.Fatalf("whole: %.300v\npieces of %d: %.300v", whole, 1+piece%17, pieces)
		}
	})
}

// TestCloseDoesNotWaitForHeldReader: a reader held by back-pressure (the
// application does not drain Messages) inside its raw read does not hold
// up closing the socket: a writer whose write failed closes it and goes
// on. Fails when the close waits for the reader (closing a socket waits
// for a RawConn.Read in progress).
func TestCloseDoesNotWaitForHeldReader(t *testing.T) {
	release, dialed := make(chan struct{}), make(chan struct{})
	url := fakeEdge(t, func(i int, ws *websocket.Conn) {
		if i == 0 {
			<-dialed // pushes after the first sync: the reader delivers them
		}
		for seq := 1; seq <= 5; seq++ {
			m := fmt.Sprintf(`{"id":"m%d","conv":"d_x","seq":%d,"from":"v","body":"b","ts":1}`, seq, seq)
			_ = ws.WriteMessage(websocket.TextMessage, protocol.Push([]byte(m)))
		}
		<-release
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{URLs: []string{url}, Token: "t", Buffer: 1, MaxPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	close(dialed)
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	if cn.rc == nil {
		t.Fatal("the connection does not read with raw reads")
	}
	// One message in the channel, two queued: the reader waits for room.
	for c.d.queued.Load() < 2 {
		if ctx.Err() != nil {
			t.Fatalf("%d messages queued", c.d.queued.Load())
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
	done := make(chan struct{})
	go func() {
		cn.ws.Close() // as queueAll does after a failed write
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("closing the socket waited for the reader held by back-pressure")
	}
	// Once the application drains, the reader ends and the client
	// reconnects.
	for range 3 {
		select {
		case <-c.Messages():
		case <-ctx.Done():
			t.Fatal("messages not delivered")
		}
	}
	for c.Stats().Reconnects == 0 {
		if ctx.Err() != nil {
			t.Fatal("no reconnect after the close")
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
}
