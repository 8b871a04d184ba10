package runner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
