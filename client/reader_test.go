package client_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/client"
)

// gatedConn counts the read calls that returned data and, while its gate
// is shut, holds reads before they reach the socket.
type gatedConn struct {
	net.Conn
	mu      sync.Mutex
	cond    *sync.Cond
	shut    bool
	waiting bool
	reads   []int // the bytes each read returned
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	for g.shut {
		g.waiting = true
		g.cond.Wait()
	}
	g.waiting = false
	g.mu.Unlock()
	n, err := g.Conn.Read(p)
	if n > 0 {
		g.mu.Lock()
		g.reads = append(g.reads, n)
		g.mu.Unlock()
	}
	return n, err
}

func (g *gatedConn) set(shut bool) {
	g.mu.Lock()
	g.shut = shut
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gatedConn) state() (waiting bool, reads []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting, g.reads
}

// inq is the number of bytes waiting in the socket's receive queue.
func (g *gatedConn) inq(t *testing.T) int {
	sc, err := g.Conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	_ = sc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	return int(n)
}

// TestReaderTakesQueuedPushesInOneRead: pushes that wait in the socket
// together (here 12 of about 550 bytes, 6.6 KB) are taken with one read
// call and delivered in order. Fails when the reader takes them in more
// reads (the WebSocket library's 4 KiB buffer takes two).
func TestReaderTakesQueuedPushesInOneRead(t *testing.T) {
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var g *gatedConn
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(cfg *client.Config) {
		cfg.AutoAck = -1
		cfg.Dialer = &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			g = &gatedConn{Conn: c}
			g.cond = sync.NewCond(&g.mu)
			return g, nil
		}}
	})
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	// Shut the gate: the read in progress takes what comes first (the
	// conversation's event or the message), the next waits at the gate.
	t.Cleanup(func() { g.set(false) })
	g.set(true)
	if _, err := a.Send(ctx, conv.ID, "before"); err != nil {
		t.Fatal(err)
	}
	for waiting, _ := g.state(); !waiting; waiting, _ = g.state() {
		if ctx.Err() != nil {
			t.Fatal("the reader did not come back to read")
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
	const n = 12
	msgs := sendBurst(ctx, t, a, conv.ID, n)
	for g.inq(t) < n*burstBody {
		if ctx.Err() != nil {
			t.Fatalf("only %d bytes arrived", g.inq(t))
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
	queued := g.inq(t)
	_, before := g.state()
	g.set(false)
	got := recv(t, b, n+1)
	if got[0].Body == "before" {
		got = got[1:]
	} else {
		got = got[:n]
	}
	for i, m := range got {
		if m.Body != msgs[i].Body {
			t.Fatalf("message %d out of order: %.3q...", i, m.Body[len(m.Body)-1:])
		}
	}
	// More frames (read receipts) may have come after the pushes: what
	// waited when the gate opened must come with the first read.
	if _, after := g.state(); after[len(before)] < queued {
		t.Fatalf("%d pushes (%d bytes) waiting together: the first read took %d bytes (reads %v), want all", n, queued, after[len(before)], after[len(before):])
	}
}

// TestLibraryReader: where the client cannot read the frames itself (wss
// with the library's TLS), the WebSocket library reads them; sending,
// receiving and reconnecting work as with the client's reader.
func TestLibraryReader(t *testing.T) {
	restore := client.UseLibraryReader()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob)
	restore()
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]client.Outgoing, 20)
	for i := range msgs {
		msgs[i] = client.Outgoing{Conv: conv.ID, Body: strings.Repeat("z", 1+i*150)}
	}
	if _, err := a.SendAll(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	for i, m := range recv(t, b, len(msgs)) {
		if m.Body != msgs[i].Body {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m.Body), len(msgs[i].Body))
		}
	}
}

// TestRawReadsTakeQueuedPushesInOneRead: on a plain TCP socket the client
// reads with raw read(2) calls; pushes that wait in the socket together
// (held there by back-pressure: the application does not drain Messages)
// are taken with one read and delivered in order once it does. Fails when
// they take more reads, or the raw reads are not used.
func TestRawReadsTakeQueuedPushesInOneRead(t *testing.T) {
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(cfg *client.Config) { cfg.AutoAck, cfg.Buffer, cfg.MaxPending = -1, 1, 1 })
	if !client.RawReads(b) {
		t.Fatal("the connection does not read with raw reads")
	}
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	// Three messages: one in the channel, two queued: the reader stops.
	for _, s := range []string{"h1", "h2", "h3"} {
		if _, err := a.Send(ctx, conv.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	for b.Stats().Pushes < 3 {
		if ctx.Err() != nil {
			t.Fatalf("bob read %d pushes", b.Stats().Pushes)
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
	const n = 12
	msgs := sendBurst(ctx, t, a, conv.ID, n)
	var queued int
	for queued < n*burstBody {
		if queued, err = client.InQueue(b); err != nil || ctx.Err() != nil {
			t.Fatalf("%d bytes arrived (%v)", queued, err)
		}
		time.Sleep(time.Millisecond) // polled with a deadline
	}
	if s := b.Stats(); s.Pushes != 3 {
		t.Fatalf("the reader went on reading: %d pushes", s.Pushes)
	}
	reads := make(chan int, 100)
	client.OnRead(b, func(n int) { reads <- n })
	got := recv(t, b, 3+n)[3:]
	for i, m := range got {
		if m.Body != msgs[i].Body {
			t.Fatalf("message %d out of order: ...%q", i, m.Body[len(m.Body)-1:])
		}
	}
	// More frames (read receipts) may come after the pushes: what waited
	// must come with the first read.
	if first := <-reads; first < queued {
		t.Fatalf("%d pushes (%d bytes) waiting together: the first read took %d bytes, want all", n, queued, first)
	}
}

// TestRawReadsLoseNoWakeUp: the raw reads skip the read(2) after a short
// one and wait for the poller; 300 round trips, each push arriving alone,
// all come at once (a lost wake-up would hold a push until the next frame
// or the idle check's reconnect). Fails when a round trip stalls.
func TestRawReadsLoseNoWakeUp(t *testing.T) {
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob)
	if !client.RawReads(a) || !client.RawReads(b) {
		t.Fatal("the connections do not read with raw reads")
	}
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		t0 := time.Now()
		if _, err := a.Send(ctx, conv.ID, "m"); err != nil {
			t.Fatal(err)
		}
		recv(t, b, 1)
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("round trip %d took %v", i, d)
		}
	}
	if s := b.Stats(); s.Reconnects != 0 {
		t.Fatalf("bob reconnected: %+v", s)
	}
}

// burstBody is the bytes of a sendBurst message but its last letter.
const burstBody = 400

// sendBurst sends n messages of burstBody bytes and a letter to conv in
// one SendAll (one write: the peer gets n pushes at once) and returns them.
func sendBurst(ctx context.Context, t *testing.T, a *client.Client, conv string, n int) []client.Outgoing {
	t.Helper()
	body := strings.Repeat("q", burstBody)
	msgs := make([]client.Outgoing, n)
	for i := range msgs {
		msgs[i] = client.Outgoing{Conv: conv, Body: body + string(rune('a'+i))}
	}
	if _, err := a.SendAll(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}
