package runner_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// fast is the stream config of most tests: 3 deliveries, quick redelivery.
var fast = streams.Config{MaxDeliver: 3, AckWait: 2 * time.Second}

func TestReplicasShareConsumer(t *testing.T) {
	t.Parallel()
	// A long AckWait: nothing may be redelivered, so counts are exact.
	e := newEnv(t, streams.Config{MaxDeliver: 3, AckWait: 30 * time.Second})
	reg := prometheus.NewRegistry()
	ta := newTally()
	var share [2]atomic.Int64
	replica := func(i int) runner.Handler {
		return runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
			share[i].Add(int64(len(msgs)))
			return ackAll(ta)(ctx, msgs)
		})
	}
	cfg := runner.Config{BatchSize: 16, Concurrency: 4, Registerer: reg}
	r0 := e.runner(cfg, replica(0))
	r1 := e.runner(cfg, replica(1))

	const n = 1000
	e.publish(n)
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if acked := r0.Stats().Acked + r1.Stats().Acked; acked != n {
			return fmt.Errorf("%d of %d acked", acked, n)
		}
		return e.settled()
	})
	if got := ta.distinct(); got != n {
		t.Fatalf("handled %d distinct messages, want %d", got, n)
	}
	for i := range n {
		if c := ta.count(strconv.Itoa(i)); c != 1 {
			t.Errorf("message %d handled %d times, want 1", i, c)
		}
	}
	if share[0].Load() == 0 || share[1].Load() == 0 {
		t.Fatalf("replica shares %d and %d: want both > 0", share[0].Load(), share[1].Load())
	}
	if got := gather(t, reg, "natter_worker_messages_total", "outcome", "ack"); got != n {
		t.Fatalf("messages_total{outcome=ack} = %v, want %d", got, n)
	}
	t.Logf("shares: %d / %d", share[0].Load(), share[1].Load())
}

func TestRetryThenAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	ta := newTally()
	r := e.runner(runner.Config{RetryDelay: time.Minute}, runner.HandlerFunc(
		func(_ context.Context, msgs []jetstream.Msg) []runner.Result {
			res := make([]runner.Result, len(msgs))
			for i, m := range msgs {
				res[i] = runner.Result{Outcome: runner.Ack}
				if ta.add(m) == 1 {
					// Delay overrides the one-minute RetryDelay.
					res[i] = runner.Result{Outcome: runner.Retry, Delay: 10 * time.Millisecond, Reason: "store busy"}
				}
			}
			return res
		}))
	e.publish(1)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := r.Stats(); s.Acked != 1 || s.Retried != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	if c := ta.count("0"); c != 2 {
		t.Fatalf("handled %d times, want 2", c)
	}
	if s := r.Stats(); !strings.Contains(s.LastError, "store busy") || s.LastErrorAt.IsZero() {
		t.Fatalf("last error %q at %v", s.LastError, s.LastErrorAt)
	}
}

func TestPoison(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	ta := newTally()
	// A poison message that was retried would wait a minute; the rest must
	// not wait for it.
	r := e.runner(runner.Config{RetryDelay: time.Minute}, runner.HandlerFunc(
		func(_ context.Context, msgs []jetstream.Msg) []runner.Result {
			res := make([]runner.Result, len(msgs))
			for i, m := range msgs {
				ta.add(m)
				res[i] = runner.Result{Outcome: runner.Ack}
				if string(m.Data()) == "bad" {
					res[i] = runner.Result{Outcome: runner.Poison, Reason: "bad payload\nsecond line"}
				}
			}
			return res
		}))

	e.publish(10)
	// The poison message carries the headers a log append has: its own
	// Nats-Msg-Id and a compare-and-set expectation, which must not follow it
	// into the DLQ stream.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	prev, err := e.js.Publish(ctx, subjects.Msg("poison"), []byte("fine"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	ack, err := e.js.Publish(ctx, subjects.Msg("poison"), []byte("bad"),
		jetstream.WithMsgID("m_bad"), jetstream.WithExpectLastSequencePerSubject(prev.Sequence))
	if err != nil {
		t.Fatalf("publish poison: %v", err)
	}
	e.publish(10)

	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := r.Stats(); s.Acked != 21 || s.Poisoned != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	dl, err := e.deadLetter()
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	want := map[string]string{
		runner.HeaderDLQReason:     "bad payload second line",
		runner.HeaderDLQStream:     subjects.StreamMsgs,
		runner.HeaderDLQSeq:        strconv.FormatUint(ack.Sequence, 10),
		runner.HeaderDLQSubject:    subjects.Msg("poison"),
		runner.HeaderDLQDeliveries: "1",
		runner.HeaderDLQMsgID:      "m_bad",
	}
	for k, v := range want {
		if got := dl.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(dl.Data) != "bad" {
		t.Errorf("dead letter data %q", dl.Data)
	}
	if info := e.consumerInfo(); info.NumRedelivered != 0 {
		t.Errorf("%d redelivered, want 0", info.NumRedelivered)
	}
	if c := ta.count("bad"); c != 1 {
		t.Fatalf("poison handled %d times, want 1", c)
	}
}

func TestRetriesExhaustedDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast) // MaxDeliver 3
	ta := newTally()
	r := e.runner(runner.Config{RetryDelay: 10 * time.Millisecond}, runner.HandlerFunc(
		func(_ context.Context, msgs []jetstream.Msg) []runner.Result {
			for _, m := range msgs {
				ta.add(m)
			}
			return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: "db down"})
		}))
	e.publish(1)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := r.Stats(); s.Poisoned != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	if c := ta.count("0"); c != 3 {
		t.Fatalf("handled %d times, want MaxDeliver = 3", c)
	}
	if s := r.Stats(); s.Retried != 2 {
		t.Fatalf("retried %d, want 2", s.Retried)
	}
	dl, err := e.deadLetter()
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	reason := dl.Header.Get(runner.HeaderDLQReason)
	if !strings.Contains(reason, "max deliveries") || !strings.Contains(reason, "db down") {
		t.Fatalf("reason %q", reason)
	}
	if d := dl.Header.Get(runner.HeaderDLQDeliveries); d != "3" {
		t.Fatalf("deliveries %q, want 3", d)
	}
}

// A handler bug fails its batch once; the message comes back and succeeds.
func TestHandlerBugRetries(t *testing.T) {
	t.Parallel()
	bugs := map[string]func([]jetstream.Msg) []runner.Result{
		"panic":         func([]jetstream.Msg) []runner.Result { panic("boom") },
		"short results": func([]jetstream.Msg) []runner.Result { return nil },
		"unset outcome": func(msgs []jetstream.Msg) []runner.Result { return make([]runner.Result, len(msgs)) },
	}
	for name, bug := range bugs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fast)
			ta := newTally()
			r := e.runner(runner.Config{RetryDelay: 10 * time.Millisecond}, runner.HandlerFunc(
				func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
					if ta.add(msgs[0]) == 1 {
						return bug(msgs)
					}
					return runner.All(len(msgs), runner.Result{Outcome: runner.Ack})
				}))
			e.publish(1)
			testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				if s := r.Stats(); s.Acked != 1 || s.Retried != 1 {
					return fmt.Errorf("stats %+v", s)
				}
				return e.settled()
			})
			if c := ta.count("0"); c != 2 {
				t.Fatalf("handled %d times, want 2", c)
			}
		})
	}
}

func TestBatching(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	const n = 500
	e.publish(n)

	reg := prometheus.NewRegistry()
	ta := newTally()
	var largest atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	r := e.runner(runner.Config{BatchSize: 50, Registerer: reg}, runner.HandlerFunc(
		func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
			once.Do(func() { <-gate }) // let the queue fill behind the first batch
			if l := int64(len(msgs)); l > largest.Load() {
				largest.Store(l)
			}
			return ackAll(ta)(ctx, msgs)
		}))
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if q := r.Stats().Queued; q < 2 {
			return fmt.Errorf("%d queued", q)
		}
		return nil
	})
	close(gate)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := r.Stats(); s.Acked != n {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	if l := largest.Load(); l <= 1 || l > 50 {
		t.Fatalf("largest batch %d, want 2..50", l)
	}
	// The loop reuses its batch slice: no batch may carry an earlier one's.
	for i := range n {
		if c := ta.count(strconv.Itoa(i)); c != 1 {
			t.Fatalf("message %d handled %d times, want 1", i, c)
		}
	}
	if got := gather(t, reg, "natter_worker_messages_total", "outcome", "ack"); got != n {
		t.Fatalf("messages_total{outcome=ack} = %v, want %d", got, n)
	}
	batches := gather(t, reg, "natter_worker_batch_size", "", "")
	if batches < 2 || batches >= n {
		t.Fatalf("batch_size count %v, want 2..%d", batches, n-1)
	}
	if calls := gather(t, reg, "natter_worker_handle_seconds", "", ""); calls != batches {
		t.Fatalf("handle_seconds count %v, batch_size count %v", calls, batches)
	}
	if g := gather(t, reg, "natter_worker_in_flight", "", ""); g != 0 {
		t.Fatalf("in_flight %v after all acked", g)
	}
}

// gather returns the value of a counter or gauge, or the sample count of a
// histogram, of metric name with role=testRole (and label=value if label is
// set).
func gather(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "role" && lp.GetValue() != testRole ||
					label != "" && lp.GetName() == label && lp.GetValue() != value {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}
