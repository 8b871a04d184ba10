package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
)

// writeCtl is a Dialer for tests of the client's writes: it counts the
// write calls that carry request frames (those starting with a text frame,
// 0x81; pongs and the close frame are not counted), and can hold the next
// one until released or make it fail.
type writeCtl struct {
	writes atomic.Int64 // write calls carrying request frames
	// hold, when set, makes the next such write wait until release is
	// closed; held is closed when it waits.
	mu      sync.Mutex
	hold    bool
	held    chan struct{}
	release chan struct{}
	// fail, when set, makes the next such write fail: failWritten says
	// whether its bytes reach the edge first.
	fail        atomic.Bool
	failWritten atomic.Bool
}

var errTestWrite = errors.New("test: write failed")

func (w *writeCtl) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &ctlConn{Conn: c, w: w}, nil
	}}
}

// holdNext arms hold; the returned channels are closed when the write
// waits (held) and must be closed by the test to let it go (release).
func (w *writeCtl) holdNext() (held, release chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hold, w.held, w.release = true, make(chan struct{}), make(chan struct{})
	return w.held, w.release
}

type ctlConn struct {
	net.Conn
	w *writeCtl
}

func (c *ctlConn) Write(p []byte) (int, error) {
	if len(p) == 0 || p[0] != 0x81 {
		return c.Conn.Write(p)
	}
	w := c.w
	w.writes.Add(1)
	w.mu.Lock()
	hold, held, release := w.hold, w.held, w.release
	w.hold = false
	w.mu.Unlock()
	if hold {
		close(held)
		<-release
	}
	if w.fail.CompareAndSwap(true, false) {
		if w.failWritten.Load() {
			_, _ = c.Conn.Write(p)
		}
		return 0, errTestWrite
	}
	return c.Conn.Write(p)
}

// pollUntil polls cond every 5ms until it holds, failing after 10s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Frames queued while a write is in progress go out together in the next
// write call, in the order they were queued; the edge answers them in that
// order, so pipelined sends are stored and acked in order.
func TestWriterBatchesQueuedFramesInOrder(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	ctl := &writeCtl{}
	alice := dial(t, urls, uniq("alice"), func(c *client.Config) { c.Dialer = ctl.dialer(); c.AutoAck = -1 })
	bob := dial(t, urls, uniq("bob"))
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, bob.User())
	if err != nil {
		t.Fatal(err)
	}
	before, writes0 := alice.Stats(), ctl.writes.Load()

	held, release := ctl.holdNext()
	first := make(chan natter.Ack, 1)
	go func() {
		ack, err := alice.Send(ctx, conv.ID, "first")
		if err != nil {
			t.Error(err)
		}
		first <- ack
	}()
	<-held // "first" is being written
	const n = 9
	want := []string{"first"}
	msgs := make([]client.Outgoing, n)
	for i := range msgs {
		msgs[i] = client.Outgoing{Conv: conv.ID, Body: fmt.Sprintf("pipelined %d", i+1)}
		want = append(want, msgs[i].Body)
	}
	type result struct {
		acks []natter.Ack
		err  error
	}
	rest := make(chan result, 1)
	go func() {
		acks, err := alice.SendAll(ctx, msgs)
		rest <- result{acks, err}
	}()
	pollUntil(t, "the batch to queue behind the write in progress", func() bool { return client.QueuedFrames(alice) == n })
	close(release)

	a0 := <-first
	r := <-rest
	if r.err != nil {
		t.Fatal(r.err)
	}
	for i, a := range r.acks {
		if a.Seq != a0.Seq+uint64(i)+1 {
			t.Fatalf("ack %d of the batch: seq %d, want %d (first was %d): not stored in the order queued", i, a.Seq, a0.Seq+uint64(i)+1, a0.Seq)
		}
	}
	after := alice.Stats()
	if got := ctl.writes.Load() - writes0; got != 2 {
		t.Fatalf("%d write calls for the held frame and the %d queued behind it, want 2", got, n)
	}
	if fr, wr := after.Frames-before.Frames, after.Writes-before.Writes; fr != n+1 || wr != 2 {
		t.Fatalf("Stats: %d frames in %d writes, want %d in 2", fr, wr, n+1)
	}
	checkSeqs(t, recv(t, bob, n+1), conv.ID, a0.Seq, want)
	quiet(t, bob, 200*time.Millisecond)
}

// A failed write closes the connection; the client reconnects and sends
// again, with the same cmids, every message not acknowledged: whether the
// failed write's frames reached the edge (the edge stores them once) or
// not (nothing is lost).
func TestWriteErrorReconnectsWithoutLossOrDuplicate(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	ctl := &writeCtl{}
	alice := dial(t, urls, uniq("alice"), func(c *client.Config) { c.Dialer = ctl.dialer(); c.AutoAck = -1 })
	bob := dial(t, urls, uniq("bob"))
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, bob.User())
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	var seqs []uint64
	for round, written := range []bool{true, false} {
		ctl.failWritten.Store(written)
		ctl.fail.Store(true)
		msgs := make([]client.Outgoing, 5)
		for i := range msgs {
			msgs[i] = client.Outgoing{Conv: conv.ID, Body: fmt.Sprintf("round %d batch %d", round, i)}
			bodies = append(bodies, msgs[i].Body)
		}
		single := fmt.Sprintf("round %d single", round)
		bodies = append(bodies, single)
		var wg sync.WaitGroup
		var one natter.Ack
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if one, err = alice.Send(ctx, conv.ID, single); err != nil {
				t.Error(err)
			}
		}()
		acks, err := alice.SendAll(ctx, msgs)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range append(acks, one) {
			seqs = append(seqs, a.Seq)
		}
		if ctl.fail.Load() {
			t.Fatalf("round %d: no write failed", round)
		}
	}
	st := alice.Stats()
	if st.WriteErrors != 2 || st.Reconnects < 2 || st.SendRetries == 0 {
		t.Fatalf("stats %+v: want 2 write errors, >= 2 reconnects, resends", st)
	}
	seen := map[uint64]bool{}
	for _, s := range seqs {
		if s == 0 || seen[s] {
			t.Fatalf("acks' seqs %v: want %d distinct, none 0", seqs, len(bodies))
		}
		seen[s] = true
	}
	got := recv(t, bob, len(bodies))
	quiet(t, bob, 300*time.Millisecond)
	count := map[string]int{}
	for i, m := range got {
		if m.Seq != got[0].Seq+uint64(i) {
			t.Fatalf("bob's message %d: seq %d after %d", i, m.Seq, got[0].Seq)
		}
		count[m.Body]++
	}
	for _, b := range bodies {
		if count[b] != 1 {
			t.Fatalf("%q delivered %d times, want once (all: %v)", b, count[b], count)
		}
	}
}

// SendAll stores the messages the edge accepts and names the refused one
// in its error (an *Error with the edge's code), with a zero ack.
func TestSendAllRefusalInTheMiddle(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice := dial(t, urls, uniq("alice"))
	bob := dial(t, urls, uniq("bob"))
	carol := dial(t, urls, uniq("carol"))
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, bob.User())
	if err != nil {
		t.Fatal(err)
	}
	other, err := bob.CreateDirect(ctx, carol.User()) // alice is not a member
	if err != nil {
		t.Fatal(err)
	}
	msgs := []client.Outgoing{{Conv: conv.ID, Body: "one"}, {Conv: other.ID, Body: "refused"}, {Conv: conv.ID, Body: "two"}}
	acks, err := alice.SendAll(ctx, msgs)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != "not_member" {
		t.Fatalf("err %v, want an *Error not_member", err)
	}
	if acks[0].Seq == 0 || acks[1].Seq != 0 || acks[2].Seq != acks[0].Seq+1 {
		t.Fatalf("acks %+v: want the first and third stored one after the other, the second not", acks)
	}
	checkSeqs(t, recv(t, bob, 2), conv.ID, acks[0].Seq, []string{"one", "two"})
}
