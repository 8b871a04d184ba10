//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

// killEdge kills (-9) the edge that the even users dialed first: their
// clients must resume on the other edge by themselves (the SDK rotates
// through its URLs), re-send what was in flight with the same cmid and
// sync what they missed. The edge is started again afterwards.
func killEdge(t *testing.T, e *env) string {
	l := faultLoad(t, e, "kill-edge")
	victim, other := e.c.Edges[0], e.c.Edges[1]
	var moved []*user
	reconnects := map[*user]uint64{}
	for i, u := range l.users {
		if i%2 == 0 {
			moved = append(moved, u)
			reconnects[u] = u.c.Stats().Reconnects
		}
	}
	held, err := metric(victim.HTTP, "natter_edge_connections")
	if err != nil || held < float64(len(moved)) {
		t.Fatalf("%s holds %v connections (%v), want at least %d", victim.Name, held, err, len(moved))
	}
	at := l.fault()
	victim.Kill()
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		for _, u := range moved {
			if u.c.Stats().Reconnects == reconnects[u] {
				return fmt.Errorf("%s has not reconnected", u.name)
			}
		}
		return nil
	})
	resumed := time.Since(at)
	onOther, err := metric(other.HTTP, "natter_edge_connections")
	if err != nil {
		t.Fatal(err)
	}
	if onOther < float64(len(l.users)) {
		t.Errorf("%s holds %v connections, want all %d clients", other.Name, onOther, len(l.users))
	}
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	restart := time.Now()
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Since(restart)
	l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	return l.report(t, res, fmt.Sprintf("kill -9 %s holding %v connections: all %d of its clients resumed on %s within %v (%v connections there); %s back in %v",
		victim.Name, held, len(moved), other.Name, resumed.Round(time.Millisecond), onOther, victim.Name, back.Round(time.Millisecond)))
}

// Slow-reader settings.
const (
	floodConvs   = 32              // groups, each with its own sender sending one message at a time: 31.25 msg/s each, so a send may take up to 32 ms
	floodRate    = 1000            // msg/s in all, floodRate/floodConvs per sender
	floodFor     = 6 * time.Second // per phase
	floodPad     = 4000            // body bytes
	slowEvery    = time.Second     // the slow reader reads one frame per second
	slowRcvBuf   = 4096            // the slow reader's socket receive buffer (SO_RCVBUF), as on a slow link
	rssGrowthMax = 12 << 10        // KiB the edge may grow by with the slow reader, over the same flood without it
)

// slowReader floods 32 groups at 1,000 msg/s in all, twice, from clients
// on edge-1; every group has its sender, one watcher (both SDK clients)
// and, in the second flood, a raw WebSocket member on edge-1 that reads
// one frame per second. A sender sends one message at a time and a
// conversation's appends are serial, so the rate needs many senders: 16
// reached 1,000 msg/s only while a send took under 16 ms, 415-830 msg/s on
// a busy machine. The edge must cut the slow member (close 4008)
// once its send queue (--send-queue, 512 frames) is full; the others'
// send -> deliver p99 must stay within 3x (or +50 ms) of the first
// flood's; and the edge's VmRSS peak must not exceed the first flood's by
// more than rssGrowthMax (12 MiB). A slow socket holds at most two queues
// of frames: the batch its writer took and is stuck writing, and a full
// queue behind it (2 x 512 frames of ~4.2 KiB = 4.3 MiB, ~8.6 MiB with
// the garbage collector's headroom at GOGC=100); an edge that kept
// buffering for the slow member would grow by ~4.2 KiB for every message
// of the flood, twice that in RSS (~30 MiB at 600 msg/s for 6 s, ~50 MiB at
// 1,000 msg/s).
func slowReader(t *testing.T, e *env) string {
	name := "slow-reader"
	l := newLoad(t, e, name, spec{users: floodConvs + 1, pad: floodPad, oneEdge: true})
	edge := e.c.Edges[0]
	watcher := l.users[floodConvs]
	slowUser := name + "-slow"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	convs := make([]string, floodConvs)
	for i := range floodConvs {
		u := l.users[i]
		conv, err := u.c.CreateGroup(ctx, fmt.Sprintf("%s-g%d", name, i), watcher.name, slowUser)
		if err != nil {
			t.Fatal(err)
		}
		l.addConv(conv.ID, []*user{u, watcher})
		convs[i] = conv.ID
	}
	cpu := map[string]string{}
	flood := func(phase string) (time.Time, time.Time) {
		c0 := e.cpuNow()
		start := time.Now()
		until := start.Add(floodFor)
		for i, u := range l.users[:floodConvs] {
			l.senders.Add(1)
			go l.sendLoop(u, u.name+"-"+phase, []string{convs[i]}, float64(floodRate)/floodConvs, floodRate, until)
		}
		l.senders.Wait()
		cpu[phase] = cpuSince(c0, e.cpuNow())
		return start, time.Now()
	}
	rss := newRSSWatch(t, edge.PID())

	// Phase A: everybody reads.
	rss.reset()
	a0, a1 := flood("a")
	ackedA := l.acked()
	rssA := rss.peak()
	t.Logf("flood without the slow reader: %d acked in %v, %s VmRSS %d -> peak %d KiB", ackedA, a1.Sub(a0).Round(time.Millisecond), edge.Name, rssA.start, rssA.max)
	waitDelivered(t, l, ackedA)

	// Phase B: the slow reader joins.
	slowBefore, err := metric(edge.HTTP, "natter_edge_slow_consumers_total")
	if err != nil {
		t.Fatal(err)
	}
	sr := dialSlow(t, e.c.EdgeURLs()[0], e.c.Token(slowUser))
	rss.reset()
	cut := watchCut(edge.HTTP, slowBefore)
	b0, b1 := flood("b")
	ackedB := l.acked() - ackedA
	rssB := rss.peak()
	rss.stop()
	t.Logf("flood with the slow reader: %d acked in %v, %s VmRSS %d -> peak %d KiB; the slow reader read %d frames", ackedB, b1.Sub(b0).Round(time.Millisecond), edge.Name, rssB.start, rssB.max, sr.frames.Load())
	var cutAt time.Time
	select {
	case cutAt = <-cut:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow reader has not been cut (natter_edge_slow_consumers_total did not move)")
	}
	cutAfter := cutAt.Sub(b0)
	code, reason, frames := sr.finish(t)
	if code != protocol.CloseSlowConsumer {
		t.Errorf("slow reader closed with %d %q, want %d", code, reason, protocol.CloseSlowConsumer)
	}
	res := l.finish(t, 2*time.Minute)

	dlv := deliveries(l.users)
	p99A, nA := p99Of(dlv, a0, a1)
	p99B, nB := p99Of(dlv, b0, b1)
	bound := max(3*p99A, p99A+50*time.Millisecond)
	if p99B > bound {
		t.Errorf("other members' send->deliver p99 with the slow reader %v, without %v (bound %v)", p99B, p99A, bound)
	}
	if rssB.max > rssA.max+rssGrowthMax {
		t.Errorf("edge VmRSS peak %d KiB with the slow reader, %d KiB without: grew by more than %d KiB", rssB.max, rssA.max, rssGrowthMax)
	}
	recvA, recvB := received(watcher, a0, a1), received(watcher, b0, b1)
	return l.report(t, res, fmt.Sprintf("flood without / with the slow reader: %.0f / %.0f msg/s acked, %.0f / %.0f msg/s received by the watcher (a member of every group, as the slow reader); during the floods: %s / %s; others' send->deliver p99 %s (n=%d) / %s (n=%d), bound %s; %s VmRSS before %d KiB, peak %d / %d KiB (bound +%d KiB; buffering the whole flood would take ~%d KiB of frames); slow reader read %d frames, cut %v into the flood, close %d %q",
		float64(ackedA)/a1.Sub(a0).Seconds(), float64(ackedB)/b1.Sub(b0).Seconds(), recvA, recvB, cpu["a"], cpu["b"], ms(p99A), nA, ms(p99B), nB, ms(bound),
		edge.Name, rssA.start, rssA.max, rssB.max, rssGrowthMax, ackedB*(floodPad+200)/1024, frames, cutAfter.Round(time.Millisecond), code, reason))
}

// received is the rate (msg/s) at which u's application received
// messages sent in [from, to).
func received(u *user, from, to time.Time) float64 {
	_, n := p99Of(deliveries([]*user{u}), from, to)
	return float64(n) / to.Sub(from).Seconds()
}

// watchCut polls the edge's slow-consumer counter every 50 ms (for at most
// two minutes) and sends the time it first exceeds before.
func watchCut(addr string, before float64) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if n, err := metric(addr, "natter_edge_slow_consumers_total"); err == nil && n > before {
				ch <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return ch
}

// waitDelivered waits until the SDK members have n deliveries of every
// acked message in all, each member counting the messages of its
// conversations.
func waitDelivered(t *testing.T, l *load, n int) {
	t.Helper()
	testenv.CheckFor(t, 2*time.Minute, 100*time.Millisecond, func() error {
		want, got := 0, 0
		l.mu.Lock()
		for _, a := range l.acks {
			want += len(l.convs[a.conv])
		}
		l.mu.Unlock()
		for _, u := range l.users {
			u.mu.Lock()
			got += u.delivered
			u.mu.Unlock()
		}
		if got < want {
			return fmt.Errorf("%d of %d deliveries of %d acked messages", got, want, n)
		}
		return nil
	})
}

// rssWatch samples a process's VmRSS every 50 ms.
type rssWatch struct {
	mu   sync.Mutex
	cur  rssPeak
	quit chan struct{}
	done chan struct{}
}

type rssPeak struct{ start, max int64 }

func newRSSWatch(t *testing.T, pid int) *rssWatch {
	w := &rssWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if kb, err := rssKiB(pid); err == nil {
				w.mu.Lock()
				if w.cur.start == 0 {
					w.cur.start = kb
				}
				w.cur.max = max(w.cur.max, kb)
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *rssWatch) reset() {
	w.mu.Lock()
	w.cur = rssPeak{}
	w.mu.Unlock()
}

func (w *rssWatch) peak() rssPeak {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

func (w *rssWatch) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// slowConn is a raw WebSocket member that reads one frame per `slowEvery`
// until told the edge has cut it, then reads the rest at once to find the
// close code.
type slowConn struct {
	conn   *websocket.Conn
	fast   atomic.Bool
	frames atomic.Int64
	code   int
	reason string
	done   chan struct{}
}

func dialSlow(t *testing.T, url, token string) *slowConn {
	t.Helper()
	nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, slowRcvBuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: nd.DialContext}
	c, resp, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial the slow reader: %v (%v)", err, resp)
	}
	s := &slowConn{conn: c, done: make(chan struct{})}
	t.Cleanup(func() { c.Close() })
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if f, err := protocol.DecodeServer(data); err != nil || f.T != protocol.FrameHello {
		t.Fatalf("slow reader: want hello, got %s (%v)", data, err)
	}
	go s.read()
	return s
}

func (s *slowConn) read() {
	defer close(s.done)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				s.code, s.reason = ce.Code, ce.Text
			} else {
				s.code, s.reason = -1, err.Error()
			}
			return
		}
		s.frames.Add(1)
		if f, err := protocol.DecodeServer(data); err == nil && f.T == protocol.FrameBye && s.code == 0 {
			s.code, s.reason = f.Bye.Code, f.Bye.Reason
		}
		if !s.fast.Load() {
			time.Sleep(slowEvery) // the reader's pace, not a synchronisation
		}
	}
}

// finish switches to reading at full speed and returns the close code
// (from the bye frame or the close frame) and the frames read.
func (s *slowConn) finish(t *testing.T) (int, string, int64) {
	t.Helper()
	s.fast.Store(true)
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the slow reader's socket was not closed")
	}
	return s.code, s.reason, s.frames.Load()
}
