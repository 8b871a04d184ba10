package runner_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// batchLog records the size of every batch a handler gets and acks it.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchLog) handler(ta *tally) runner.HandlerFunc {
	ack := ackAll(ta)
	return func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		b.mu.Lock()
		b.sizes = append(b.sizes, len(msgs))
		b.mu.Unlock()
		return ack(ctx, msgs)
	}
}

func (b *batchLog) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sizes)
}

// lingerRunner starts a runner with cfg whose handler logs its batches.
func lingerRunner(t *testing.T, cfg runner.Config) (*env, *runner.Runner, *batchLog, *tally) {
	t.Helper()
	e := newEnv(t, fast)
	ta := newTally()
	bl := new(batchLog)
	return e, e.runner(cfg, bl.handler(ta)), bl, ta
}

// waitDelivered waits until the consumer has delivered n messages.
func (e *env) waitDelivered(t *testing.T, n uint64) {
	t.Helper()
	testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if d := e.consumerInfo().Delivered.Consumer; d < n {
			return fmt.Errorf("%d of %d delivered", d, n)
		}
		return nil
	})
}

// A runner with a Linger waits for its batch to fill: messages that arrive
// one by one, each only after the previous reached the runner, are handled
// in one batch. Without the linger the first one is handled alone.
func TestLingerFillsBatch(t *testing.T) {
	t.Parallel()
	e, r, bl, _ := lingerRunner(t, runner.Config{BatchSize: 5, Linger: time.Minute})
	for i := range 5 {
		e.publishRange(i, i+1)
		e.waitDelivered(t, uint64(i+1))
	}
	testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if s := r.Stats(); s.Acked != 5 {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	if got := bl.get(); !slices.Equal(got, []int{5}) {
		t.Fatalf("batches %v, want one of 5", got)
	}
}

// A batch that does not fill is handled when the linger runs out.
func TestLingerRunsOut(t *testing.T) {
	t.Parallel()
	e, r, _, ta := lingerRunner(t, runner.Config{BatchSize: 100, Linger: 50 * time.Millisecond})
	e.publish(3)
	testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if s := r.Stats(); s.Acked != 3 {
			return fmt.Errorf("stats %+v", s)
		}
		return e.settled()
	})
	if ta.distinct() != 3 {
		t.Fatalf("%d distinct messages handled, want 3", ta.distinct())
	}
}

// Stop does not wait out a linger: the lingering batch is handled and acked
// before Stop returns.
func TestStopEndsLinger(t *testing.T) {
	t.Parallel()
	e, r, bl, _ := lingerRunner(t, runner.Config{BatchSize: 10, Linger: time.Hour})
	e.publish(1)
	e.waitDelivered(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s := r.Stats(); s.Acked != 1 {
		t.Fatalf("after stop: stats %+v, want 1 acked", s)
	}
	if got := bl.get(); !slices.Equal(got, []int{1}) {
		t.Fatalf("batches %v, want one of 1", got)
	}
}

// With LingerOn, only batches of accepted messages wait: a refused message
// that starts a batch is handled at once, and one that arrives during a
// wait ends it.
func TestLingerOn(t *testing.T) {
	t.Parallel()
	e, r, bl, _ := lingerRunner(t, runner.Config{BatchSize: 10, Linger: time.Hour,
		LingerOn: func(m jetstream.Msg) bool { return natter.IsGroupID(subjects.ConvFromMsg(m.Subject())) }})
	pub := func(conv, payload string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := e.js.Publish(ctx, subjects.Msg(conv), []byte(payload)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	acked := func(n uint64) {
		t.Helper()
		testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
			if s := r.Stats(); s.Acked != n {
				return fmt.Errorf("stats %+v, want %d acked", s, n)
			}
			return nil
		})
	}
	// A direct conversation's message alone: no wait.
	pub("d_1", "d1")
	acked(1)
	// A group's message waits; a direct one ends the wait.
	pub("g_1", "g1")
	e.waitDelivered(t, 2)
	pub("g_2", "g2")
	e.waitDelivered(t, 3)
	pub("d_1", "d2")
	acked(4)
	if got := bl.get(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("batches %v, want [1 3]", got)
	}
}
