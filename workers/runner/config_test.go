package runner_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

func TestNewInvalidConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	h := ackAll(newTally())
	ok := runner.Config{Role: "persist", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist}
	tests := []struct {
		name string
		mod  func(*runner.Config)
		h    runner.Handler
	}{
		{"no role", func(c *runner.Config) { c.Role = "" }, h},
		{"role not a token", func(c *runner.Config) { c.Role = "a.b" }, h},
		{"no stream", func(c *runner.Config) { c.Stream = "" }, h},
		{"no consumer", func(c *runner.Config) { c.Consumer = "" }, h},
		{"negative max deliver", func(c *runner.Config) { c.MaxDeliver = -1 }, h},
		{"no handler", func(*runner.Config) {}, nil},
		{"pull expiry under 1s", func(c *runner.Config) { c.PullExpiry = 500 * time.Millisecond }, h},
		{"pull heartbeat under 500ms", func(c *runner.Config) { c.PullHeartbeat = 100 * time.Millisecond }, h},
		{"pull heartbeat over half the expiry", func(c *runner.Config) { c.PullHeartbeat = 3 * time.Second }, h},
		{"negative pull expiry", func(c *runner.Config) { c.PullExpiry = -time.Second }, h},
		{"negative pull max", func(c *runner.Config) { c.PullMax = -1 }, h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			if _, err := runner.New(e.js, cfg, tt.h); !errors.Is(err, runner.ErrInvalidConfig) {
				t.Fatalf("New: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	h := ackAll(newTally())
	tests := []struct {
		name string
		cfg  runner.Config
		want error
	}{
		{"missing consumer", runner.Config{Consumer: "NOPE"}, jetstream.ErrConsumerNotFound},
		{"missing stream", runner.Config{Stream: "NOPE"}, jetstream.ErrStreamNotFound},
		{"max deliver differs", runner.Config{MaxDeliver: 10}, runner.ErrConsumerMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Role = testRole
			if cfg.Stream == "" {
				cfg.Stream = subjects.StreamMsgs
			}
			if cfg.Consumer == "" {
				cfg.Consumer = subjects.ConsumerPersist
			}
			r, err := runner.New(e.js, cfg, h)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := r.Start(context.Background()); !errors.Is(err, tt.want) {
				t.Fatalf("Start: %v, want %v", err, tt.want)
			}
			if err := r.Ready(); !errors.Is(err, runner.ErrNotConsuming) {
				t.Fatalf("Ready after a failed Start: %v, want ErrNotConsuming", err)
			}
			if err := r.Stop(context.Background()); err != nil {
				t.Fatalf("Stop after failed Start: %v", err)
			}
		})
	}
	r := e.runner(runner.Config{MaxDeliver: 3}, h)
	if err := r.Start(context.Background()); !errors.Is(err, runner.ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
}

// TestPullMax: Config.PullMax bounds what the runner buffers ahead of its
// loops (the pull size and the queue), below the default of 2 x BatchSize
// x Concurrency: with the handler held on its first batch, the queue fills
// to PullMax and the consumer has delivered no more than the batch in
// hand, the queue, one pull's worth in the client and the message the
// callback holds.
func TestPullMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fast)
	const batch, pullMax = 8, 8
	release := make(chan struct{})
	ta := newTally()
	ack := ackAll(ta)
	r := e.runner(runner.Config{BatchSize: batch, PullMax: pullMax}, runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		<-release
		return ack(ctx, msgs)
	}))
	defer close(release)
	e.publish(200)
	testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if q := r.Stats().Queued; q != pullMax {
			return fmt.Errorf("%d queued, want the queue full at %d", q, pullMax)
		}
		return nil
	})
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		if q := r.Stats().Queued; q > pullMax {
			t.Fatalf("%d queued, want at most PullMax %d", q, pullMax)
		}
		if n := e.consumerInfo().NumAckPending; n > batch+2*pullMax+1 {
			t.Fatalf("%d delivered and not acked, want at most %d (batch + queue + one pull + the callback's)", n, batch+2*pullMax+1)
		}
	}
}
