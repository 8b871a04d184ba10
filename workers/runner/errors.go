package runner

import "errors"

var (
	// ErrInvalidConfig is returned by [New] for a Config it cannot run with.
	ErrInvalidConfig = errors.New("runner: invalid config")
	// ErrConsumerMismatch is returned by [Runner.Start] when the durable
	// consumer cannot be run with the Config (MaxDeliver differs, or acks are
	// not explicit).
	ErrConsumerMismatch = errors.New("runner: consumer does not match config")
	// ErrStarted is returned by a second [Runner.Start].
	ErrStarted = errors.New("runner: already started")
	// ErrNotConsuming is wrapped by [Runner.Ready] while the Runner is not
	// attached to its consumer.
	ErrNotConsuming = errors.New("runner: not consuming")
	// ErrStopped is returned by [Runner.Start] after [Runner.Stop].
	ErrStopped = errors.New("runner: stopped")
)
