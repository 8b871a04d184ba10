package msglog_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestAppendRetriesAfterNoAnswer: an append whose publish gets no answer
// (its server froze: the connection stays open and nothing comes back) is
// retried after AttemptTimeout with the same message id, here on the
// connection the client moved to, and succeeds long before the caller's
// deadline, stored once.
func TestAppendRetriesAfterNoAnswer(t *testing.T) {
	s := startServer(t, streams.Config{})
	p := newFreezeProxy(t, s.ClientURL())
	// The proxy first; once it froze, the client's pings give it up and it
	// reconnects to the server directly.
	nc := testenv.Connect(t, p.url()+","+s.ClientURL(), nats.DontRandomize(),
		nats.PingInterval(200*time.Millisecond), nats.MaxPingsOutstanding(2),
		nats.ReconnectWait(50*time.Millisecond), nats.Timeout(time.Second))
	js := testenv.JetStream(t, nc)
	l, err := msglog.New(context.Background(), nc, js, msglog.Config{AttemptTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conv := "c_stall"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.Append(ctx, msglog.Send{Conv: conv, From: "alice", Cmid: "m1", Body: "one", FirstAttempt: true}); err != nil {
		t.Fatal(err)
	}
	p.freeze()
	start := time.Now()
	ack, err := l.Append(ctx, msglog.Send{Conv: conv, From: "alice", Cmid: "m2", Body: "two", FirstAttempt: true})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("append with a frozen server: %v after %v", err, took)
	}
	if ack.Seq != 2 || ack.Dup {
		t.Fatalf("ack %+v, want seq 2, not a duplicate", ack)
	}
	if took > 10*time.Second {
		t.Fatalf("append took %v: the stalled attempt waited for the caller's deadline", took)
	}
	if msglog.Stalls(l) == 0 {
		t.Fatal("no stalled attempt counted")
	}
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.Msg(conv)))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subjects.Msg(conv)]; n != 2 {
		t.Fatalf("%d entries of %s stored, want 2", n, conv)
	}
	t.Logf("append done %v after the freeze, %d stalled attempts", took.Round(time.Millisecond), msglog.Stalls(l))
}

// TestAppendRetriesWhileNoLeader: while no server answers for the stream
// (here it is gone; in a cluster, its leader died and the election is under
// way), an append keeps retrying and succeeds once the stream answers
// again.
func TestAppendRetriesWhileNoLeader(t *testing.T) {
	s := startServer(t, streams.Config{})
	l, js := newLog(t, s)
	conv := "c_noleader"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.Append(ctx, msglog.Send{Conv: conv, From: "alice", Cmid: "m1", Body: "one", FirstAttempt: true}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, subjects.StreamMsgs); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ack natter.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		ack, err := l.Append(ctx, msglog.Send{Conv: conv, From: "alice", Cmid: "m2", Body: "two", FirstAttempt: true})
		done <- result{ack, err}
	}()
	// The stream comes back once the append has found nobody to answer.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if msglog.Stalls(l) > 0 {
			return nil
		}
		select {
		case r := <-done:
			t.Fatalf("append returned while the stream was gone: %+v, %v", r.ack, r.err)
		default:
		}
		return errors.New("no stalled attempt")
	})
	if _, err := streams.Apply(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("append after the stream came back: %v", r.err)
	}
	// The recreated stream is empty: the append re-read the head.
	if r.ack.Seq != 1 || r.ack.Dup {
		t.Fatalf("ack %+v, want seq 1 of the recreated stream, not a duplicate", r.ack)
	}
}

// freezeProxy forwards TCP connections to a server until freeze: from then
// on it forwards nothing and answers nothing, keeping the connections open
// (a SIGSTOPped server), and closes new ones.
type freezeProxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	thaw   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezeProxy(t *testing.T, natsURL string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := natsURL[len("nats://"):]
	p := &freezeProxy{ln: ln, target: target, thaw: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *freezeProxy) freeze() { p.frozen.Store(true) }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.frozen.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies from src to dst until either fails; once frozen it stops
// reading and holds what it read until the proxy closes.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.frozen.Load() {
			<-p.thaw
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) close() {
	_ = p.ln.Close()
	close(p.thaw)
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
