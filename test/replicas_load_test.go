package test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// replicaEnv is a front node (embedded NATS and store, the edge and every
// role but persist and fanout) and the configuration of a worker replica
// running persist and fanout on the same NATS and store. Every replica is
// started from the same configuration.
type replicaEnv struct {
	front  *node.Node
	worker node.Config
	js     jetstream.JetStream
}

func newReplicaEnv(t testing.TB) *replicaEnv {
	t.Helper()
	var front []string
	for _, r := range node.AllRoles {
		if r != node.RolePersist && r != node.RoleFanout {
			front = append(front, r)
		}
	}
	dev := startNode(t, node.Config{Mode: node.ModeDev, Roles: front})
	js := testenv.JetStream(t, testenv.Connect(t, dev.NATSURL()))
	return &replicaEnv{
		front:  dev,
		worker: node.Config{Mode: node.ModeWorker, NATSURL: dev.NATSURL(), MongoURI: dev.MongoURI(), Roles: []string{node.RolePersist, node.RoleFanout}},
		js:     js,
	}
}

// replica starts one more worker replica.
func (e *replicaEnv) replica(t testing.TB) *node.Node { return startNode(t, e.worker) }

// replicas starts n worker replicas at the same time.
func (e *replicaEnv) replicas(t testing.TB, n int) []*node.Node {
	t.Helper()
	cfg := e.worker
	cfg.AdminAddr = "127.0.0.1:0"
	nodes := make([]*node.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nodes[i], errs[i] = node.Start(ctx, cfg)
		})
	}
	wg.Wait()
	for _, nd := range nodes {
		if nd == nil {
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = nd.Shutdown(ctx)
		})
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start replica %d: %v", i+1, err)
		}
	}
	return nodes
}

// consumer is the info of a role's durable consumer on MSGS.
func (e *replicaEnv) consumer(t testing.TB, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, subjects.StreamMsgs, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", name, err)
	}
	return info
}

// waitConsumersIdle waits until PERSIST and FANOUT have handled every
// message MSGS held when it was called: each one's ack floor (messages acked
// or terminated, in stream order) reaches the stream's last sequence, and
// nothing is pending or unacknowledged. Both take every subject of MSGS
// (streams.Define), so their ack floors reach its last sequence.
//
// NumPending == 0 && NumAckPending == 0 alone is no proof: the server sends
// the PubAck of a send before it counts the message for its consumers (a
// separate goroutine does that), so right after the last send a consumer can
// report nothing pending and nothing unacked while that message sits in the
// stream undelivered.
func (e *replicaEnv) waitConsumersIdle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatalf("stream %s: %v", subjects.StreamMsgs, err)
	}
	last := st.CachedInfo().State.LastSeq
	testenv.CheckFor(t, 120*time.Second, 50*time.Millisecond, func() error {
		for _, name := range []string{subjects.ConsumerPersist, subjects.ConsumerFanout} {
			if ci := e.consumer(t, name); ci.AckFloor.Stream < last || ci.NumPending != 0 || ci.NumAckPending != 0 {
				return fmt.Errorf("%s: ack floor at stream seq %d of %d, %d pending, %d unacknowledged",
					name, ci.AckFloor.Stream, last, ci.NumPending, ci.NumAckPending)
			}
		}
		return nil
	})
}

// roleCounts is what one replica processed per role.
type roleCounts struct{ persist, fanout uint64 }

func (a roleCounts) sub(b roleCounts) roleCounts {
	return roleCounts{persist: a.persist - b.persist, fanout: a.fanout - b.fanout}
}

func (a roleCounts) add(b roleCounts) roleCounts {
	return roleCounts{persist: a.persist + b.persist, fanout: a.fanout + b.fanout}
}

// processed scrapes a worker replica's /metrics: natter_worker_batch_size_sum
// of a role is the number of messages that replica handed to the role's
// handler (the runner's Stats.Processed). Each process has its own registry,
// so these are per-replica counts.
func processed(t testing.TB, n *node.Node) roleCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Addr()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", n.Addr(), err)
	}
	defer resp.Body.Close()
	var c roleCounts
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "natter_worker_batch_size_sum{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			t.Fatalf("metrics line %q", sc.Text())
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		switch {
		case strings.Contains(labels, `role="persist"`):
			c.persist = uint64(v)
		case strings.Contains(labels, `role="fanout"`):
			c.fanout = uint64(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", n.Addr(), err)
	}
	return c
}

// traffic is a set of group conversations, one sender each, with the same
// receivers in all of them; every client (senders too) records what its
// Messages channel delivers.
type traffic struct {
	t     testing.TB
	convs []string
	recv  []*receiver

	mu   sync.Mutex
	acks map[string][]natter.Ack // per conversation, in ack order
	n    int

	stop chan struct{}
	wg   sync.WaitGroup
	snd  []*client.Client
}

type receiver struct {
	user  string
	convs []string // the conversations it is a member of
	c     *client.Client

	mu  sync.Mutex
	got map[string][]natter.Message
}

// newTraffic creates convs groups, each by its own sender with receivers
// users r0..r(receivers-1), and connects every client.
func newTraffic(t testing.TB, front *node.Node, convs, receivers int) *traffic {
	t.Helper()
	tr := &traffic{t: t, acks: map[string][]natter.Ack{}, stop: make(chan struct{})}
	cfg := client.Config{URLs: []string{wsURL(front)}, FromStart: true}
	var rusers []string
	for i := range receivers {
		rusers = append(rusers, fmt.Sprint("r", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range convs {
		user := fmt.Sprint("s", i)
		c := sdk(t, user, cfg)
		conv, err := c.CreateGroup(ctx, "load-"+user, rusers...)
		if err != nil {
			t.Fatalf("create group: %v", err)
		}
		tr.snd = append(tr.snd, c)
		tr.convs = append(tr.convs, conv.ID)
		tr.recv = append(tr.recv, &receiver{user: user, convs: []string{conv.ID}, c: c})
	}
	for _, u := range rusers {
		tr.recv = append(tr.recv, &receiver{user: u, convs: tr.convs, c: sdk(t, u, cfg)})
	}
	for _, r := range tr.recv {
		r.got = map[string][]natter.Message{}
		tr.wg.Go(func() { r.run(tr.stop) })
	}
	t.Cleanup(tr.close)
	return tr
}

func (r *receiver) run(stop <-chan struct{}) {
	for {
		select {
		case m := <-r.c.Messages():
			r.mu.Lock()
			r.got[m.Conv] = append(r.got[m.Conv], m)
			r.mu.Unlock()
		case <-stop:
			return
		}
	}
}

// send starts one sender per conversation: up to max messages each, one
// every interval (0: back to back), until halt is closed or limit passes.
// It returns at once; wait on the returned channel.
func (tr *traffic) send(max int, interval, limit time.Duration, halt <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(limit)
	for i, c := range tr.snd {
		conv := tr.convs[i]
		wg.Go(func() {
			var tick <-chan time.Time
			if interval > 0 {
				tk := time.NewTicker(interval)
				defer tk.Stop()
				tick = tk.C
			}
			for k := 0; k < max && time.Now().Before(deadline); k++ {
				if tick != nil {
					select {
					case <-tick:
					case <-halt:
						return
					}
				} else {
					select {
					case <-halt:
						return
					default:
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				ack, err := c.Send(ctx, conv, fmt.Sprintf("%s-%d", conv, k))
				cancel()
				if err != nil {
					tr.t.Errorf("send %s #%d: %v", conv, k, err)
					return
				}
				tr.mu.Lock()
				tr.acks[conv] = append(tr.acks[conv], ack)
				tr.n++
				tr.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// acked is the number of acknowledged sends so far.
func (tr *traffic) acked() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n
}

func (tr *traffic) close() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

// checkStored checks that MongoDB holds every acknowledged message exactly
// once: per conversation, as many rows as acks, one row per seq 1..n, each
// with the acked id.
func (tr *traffic) checkStored(t testing.TB, front *node.Node) {
	t.Helper()
	testenv.CheckFor(t, 120*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, conv := range tr.convs {
			n, err := front.Store().CountMessages(ctx, conv)
			if err != nil {
				return err
			}
			if want := len(tr.acks[conv]); n != int64(want) {
				return fmt.Errorf("%s: %d rows, %d acked", conv, n, want)
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, conv := range tr.convs {
		acks := tr.acks[conv]
		rows, err := front.Store().MessagesRange(ctx, conv, 0, uint64(len(acks))+1000, len(acks)+1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(acks) {
			t.Fatalf("%s: %d rows, %d acked", conv, len(rows), len(acks))
		}
		for i, m := range rows {
			if a := acks[i]; m.Seq != uint64(i+1) || a.Seq != m.Seq || a.ID != m.ID {
				t.Fatalf("%s row %d: seq %d id %s, ack seq %d id %s", conv, i, m.Seq, m.ID, a.Seq, a.ID)
			}
		}
	}
}

// checkDelivered waits until every client has every message of its
// conversations, then checks each got them exactly once and in order.
func (tr *traffic) checkDelivered(t testing.TB) {
	t.Helper()
	count := func(r *receiver, conv string) int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got[conv])
	}
	testenv.CheckFor(t, 120*time.Second, 50*time.Millisecond, func() error {
		for _, r := range tr.recv {
			for _, conv := range r.convs {
				if got, want := count(r, conv), len(tr.acks[conv]); got < want {
					return fmt.Errorf("%s has %d of %d messages of %s", r.user, got, want, conv)
				}
			}
		}
		return nil
	})
	for _, r := range tr.recv {
		r.mu.Lock()
		for _, conv := range r.convs {
			got, acks := r.got[conv], tr.acks[conv]
			if len(got) != len(acks) {
				t.Errorf("%s: %d deliveries of %s, %d acked", r.user, len(got), conv, len(acks))
			}
			for i := range min(len(got), len(acks)) {
				if got[i].Seq != acks[i].Seq || got[i].ID != acks[i].ID {
					t.Errorf("%s: delivery %d of %s is seq %d, want %d", r.user, i, conv, got[i].Seq, acks[i].Seq)
					break
				}
			}
		}
		r.mu.Unlock()
	}
}

// clientStats sums the receivers' SDK counters: how deliveries arrived.
func (tr *traffic) clientStats() (pushes, synced, dups uint64) {
	for _, r := range tr.recv {
		s := r.c.Stats()
		pushes += s.Pushes
		synced += s.Synced
		dups += s.Duplicates
	}
	return
}

// figure formats per-replica rows as a table.
type figure struct {
	rows [][]string
}

func (f *figure) add(replica, phase string, c roleCounts) {
	f.rows = append(f.rows, []string{replica, phase, strconv.FormatUint(c.persist, 10), strconv.FormatUint(c.fanout, 10)})
}

func (f *figure) String() string {
	rows := append([][]string{{"replica", "phase", "persist processed", "fanout processed"}}, f.rows...)
	width := make([]int, 4)
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for j, r := range rows {
		b.WriteString("|")
		for i, c := range r {
			if i >= 2 {
				fmt.Fprintf(&b, " %*s |", width[i], c)
			} else {
				fmt.Fprintf(&b, " %-*s |", width[i], c)
			}
		}
		b.WriteString("\n")
		if j == 0 {
			b.WriteString("|")
			for i := range r {
				dash := strings.Repeat("-", width[i])
				if i >= 2 {
					dash = dash[1:] + ":"
				}
				b.WriteString(" " + dash + " |")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// share is part's fraction of part+other.
func share(part, other uint64) float64 {
	if part+other == 0 {
		return 0
	}
	return float64(part) / float64(part+other)
}
