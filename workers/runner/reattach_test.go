package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// A running Runner whose consumer is deleted stops being ready, looks the
// consumer up again without creating it, and consumes once "natter streams
// apply" (streams.Apply) has recreated it: no restart. A Stop while it waits
// for the consumer returns at once.
func TestConsumerDeletedAndRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	reg := prometheus.NewRegistry()
	ta := newTally()
	r := e.runner(runner.Config{BatchSize: 4, Registerer: reg}, ackAll(ta))
	handled := func(from, to int) error {
		for i := from; i < to; i++ {
			if ta.count(strconv.Itoa(i)) == 0 {
				return fmt.Errorf("message %d not handled", i)
			}
		}
		return nil
	}
	consuming := func(want bool) error {
		s := r.Stats()
		g := gather(t, reg, "natter_worker_consuming", "", "")
		if err := r.Ready(); (err == nil) != want || s.Consuming != want || (g == 1) != want {
			return fmt.Errorf("Ready %v, stats consuming %v, gauge %v; want consuming %v", err, s.Consuming, g, want)
		}
		return nil
	}

	e.publishRange(0, 10)
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if err := handled(0, 10); err != nil {
			return err
		}
		return consuming(true)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.js.DeleteConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error { return consuming(false) })
	if err := r.Ready(); !errors.Is(err, runner.ErrNotConsuming) {
		t.Fatalf("Ready without a consumer: %v, want ErrNotConsuming", err)
	}
	// Messages logged while the consumer is gone wait for the new one.
	e.publishRange(10, 20)
	// The runner looks the consumer up and finds nothing; it must not
	// create it.
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		if s := r.Stats(); !strings.HasPrefix(s.LastError, "reattach:") {
			return fmt.Errorf("no failed look-up yet: last error %q", s.LastError)
		}
		return nil
	})
	if _, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after the runner's look-ups: %v, want ErrConsumerNotFound (the runner must not create it)", err)
	}
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "consumer not found") {
		t.Fatalf("Ready: %v, want the look-up's error", err)
	}

	if _, err := streams.Apply(ctx, e.js, fast); err != nil {
		t.Fatalf("apply streams: %v", err)
	}
	e.publishRange(20, 30)
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if err := handled(0, 30); err != nil {
			return err
		}
		if err := consuming(true); err != nil {
			return err
		}
		return e.settled()
	})
	s := r.Stats()
	if s.ConsumeLost != 1 {
		t.Fatalf("consume lost %d times, want 1", s.ConsumeLost)
	}
	if got := gather(t, reg, "natter_worker_consume_lost_total", "", ""); got != 1 {
		t.Fatalf("consume_lost_total %v, want 1", got)
	}
	t.Logf("stats after the consumer came back: %+v", s)

	// Stop while the consumer is missing: nothing to drain, no wait.
	if err := e.js.DeleteConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); err != nil {
		t.Fatalf("delete consumer again: %v", err)
	}
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error { return consuming(false) })
	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := r.Stop(sctx); err != nil {
		t.Fatalf("Stop without a consumer: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Stop without a consumer took %v", d)
	}
	if err := r.Ready(); !errors.Is(err, runner.ErrStopped) {
		t.Fatalf("Ready after Stop: %v, want ErrStopped", err)
	}
	if _, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after Stop: %v, want ErrConsumerNotFound", err)
	}
}
