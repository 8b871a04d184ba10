package runner

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Config of one Runner.
type Config struct {
	// Role names the worker role ("persist", "fanout"). It is a subject token
	// (subjects.ValidID): the dead-letter subject is subjects.DLQ(Role), and
	// it labels metrics and logs. Required.
	Role string
	// Stream and Consumer name the durable pull consumer, created beforehand
	// (streams.Apply). Required.
	Stream, Consumer string
	// BatchSize is the most messages one Handle call gets. Zero means 1.
	BatchSize int
	// Concurrency is how many Handle calls run at once. Zero means 1.
	Concurrency int
	// Linger is how long a loop that has taken fewer than BatchSize
	// messages waits for more before it calls Handle: larger batches for
	// roles whose cost is per call more than per message (the store's
	// inserts), at the price of that much latency. Zero means no wait.
	Linger time.Duration
	// LingerOn, when set, limits the wait to batches of messages it
	// accepts: a batch that starts with a message it refuses is handled at
	// once, and one that arrives while the loop waits ends the wait. Nil
	// means every message.
	LingerOn func(jetstream.Msg) bool
	// PullMax is how many messages the runner buffers ahead of its loops:
	// the client's pull size (PullMaxMessages) and the queue the loops take
	// batches from. Zero means 2 x BatchSize x Concurrency: every loop a
	// full batch in hand and another one queued. A role with large
	// batches sets less, to bound what a replica holds (memory, and what
	// Stop hands to the handler); BatchSize x Concurrency still gives
	// every loop a full batch under a backlog.
	PullMax int
	// RetryDelay is the redelivery delay of a Retry without its own Delay.
	// Zero means 1s.
	RetryDelay time.Duration
	// MaxDeliver is the consumer's MaxDeliver: a Retry on that delivery is
	// dead-lettered instead. Zero means read it from the consumer; a non-zero
	// value that differs from the consumer's makes Start fail with
	// [ErrConsumerMismatch].
	MaxDeliver int
	// PullExpiry is how long one pull request of the consume loop waits on
	// the server before it is renewed; 1s or more. Zero means 5s.
	PullExpiry time.Duration
	// PullHeartbeat is the idle heartbeat the server sends on a waiting
	// pull; after two missed heartbeats the pull is taken for lost (its
	// consumer leader died, a route broke) and a new one is sent. It must
	// be 500ms or more and at most half of PullExpiry. Zero means 1s, or
	// half of PullExpiry if that is shorter.
	PullHeartbeat time.Duration
	// Logger receives the runner's logs, scoped with role, stream and
	// consumer. Nil means discard.
	Logger *slog.Logger
	// Registerer receives the natter_worker_* metrics. Runners of several
	// roles may share one. Nil means no metrics.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.PullExpiry <= 0 {
		c.PullExpiry = defaultPullExpiry
	}
	if c.PullHeartbeat <= 0 {
		c.PullHeartbeat = min(defaultPullHeartbeat, c.PullExpiry/2)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if err := subjects.ValidID(c.Role); err != nil {
		return fmt.Errorf("%w: Role: %w", ErrInvalidConfig, err)
	}
	if c.Stream == "" || c.Consumer == "" {
		return fmt.Errorf("%w: Stream and Consumer are required", ErrInvalidConfig)
	}
	if e := c.withDefaults(); c.PullExpiry < 0 || c.PullHeartbeat < 0 || e.PullExpiry < minPullExpiry ||
		e.PullHeartbeat < minPullHeartbeat || e.PullHeartbeat > e.PullExpiry/2 {
		return fmt.Errorf("%w: PullExpiry %v and PullHeartbeat %v: want an expiry of at least %v and a heartbeat of %v up to half of it",
			ErrInvalidConfig, c.PullExpiry, c.PullHeartbeat, minPullExpiry, minPullHeartbeat)
	}
	if c.PullMax < 0 {
		return fmt.Errorf("%w: PullMax %d is negative", ErrInvalidConfig, c.PullMax)
	}
	if c.MaxDeliver < 0 {
		return fmt.Errorf("%w: MaxDeliver %d is negative", ErrInvalidConfig, c.MaxDeliver)
	}
	return nil
}

// Pull defaults. nats.go's own (a 30s expiry with a 15s heartbeat) notice
// a pull lost with its consumer leader only after 30s.
const (
	defaultPullExpiry    = 5 * time.Second
	defaultPullHeartbeat = time.Second
	minPullExpiry        = time.Second            // nats.go's lower bounds
	minPullHeartbeat     = 500 * time.Millisecond //
)

// pullMax is how many messages the runner buffers: Config.PullMax, by
// default enough for every loop to have a full batch in hand and another
// one queued.
func (c Config) pullMax() int {
	if c.PullMax > 0 {
		return c.PullMax
	}
	return 2 * c.BatchSize * c.Concurrency
}
