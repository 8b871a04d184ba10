package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/workers/runner"
)

func TestStopDrainsInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	const n = 20
	e.publish(n)

	first := newTally()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := e.runner(runner.Config{}, runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		once.Do(func() {
			close(entered)
			<-release
		})
		return ackAll(first)(ctx, msgs)
	}))
	<-entered

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.Stop(ctx)
	}()
	// Not synchronisation: Stop must still be waiting for the slow Handle.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v while Handle was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if s := r.Stats(); s.InFlight != 1 {
		t.Fatalf("in flight %d, want 1", s.InFlight)
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	handled := first.distinct()
	s := r.Stats()
	if handled == 0 || s.Acked != uint64(handled) || s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("after Stop: handled %d, stats %+v", handled, s)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := r.Start(context.Background()); !errors.Is(err, runner.ErrStopped) {
		t.Fatalf("Start after Stop: %v, want ErrStopped", err)
	}
	// One loop and batches of one: messages were handled in stream order, so
	// the acks of the first `handled` messages move the ack floor.
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if f := e.consumerInfo().AckFloor.Stream; f < uint64(handled) {
			return fmt.Errorf("ack floor %d, want >= %d", f, handled)
		}
		return nil
	})

	second := newTally()
	e.runner(runner.Config{BatchSize: 8}, ackAll(second))
	testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		for i := range n {
			p := strconv.Itoa(i)
			if first.count(p)+second.count(p) == 0 {
				return fmt.Errorf("message %d not handled", i)
			}
		}
		return e.settled()
	})
	if got := first.distinct(); got != handled {
		t.Fatalf("stopped runner handled %d messages after Stop", got-handled)
	}
	t.Logf("first runner %d, second runner %d", handled, second.distinct())
}

// A Stop whose context ends cancels the slow Handle and hands the rest back.
func TestStopGivesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	const n = 20
	e.publish(n)
	entered := make(chan struct{})
	var once sync.Once
	r := e.runner(runner.Config{RetryDelay: 10 * time.Millisecond}, runner.HandlerFunc(
		func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
			once.Do(func() { close(entered) })
			<-ctx.Done() // stuck until Stop gives up
			return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: ctx.Err().Error()})
		}))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want DeadlineExceeded", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	ta := newTally()
	e.runner(runner.Config{BatchSize: 8}, ackAll(ta))
	testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if d := ta.distinct(); d != n {
			return fmt.Errorf("%d of %d handled", d, n)
		}
		return e.settled()
	})
}
