package runner

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Outcome says what the runner does with a handled message.
type Outcome int

// Outcomes. The zero Outcome is not valid: a Result left unset is treated as
// a handler bug and retried, never acknowledged by accident.
const (
	// Ack: done (stored, delivered, or a duplicate of something done).
	Ack Outcome = iota + 1
	// Retry: a transient failure; redeliver after Result.Delay. On the
	// consumer's last delivery the message is dead-lettered instead.
	Retry
	// Poison: the message can never succeed; dead-letter it and terminate.
	Poison
)

func (o Outcome) String() string {
	switch o {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case Poison:
		return "poison"
	}
	return "invalid"
}

// Result is the handler's verdict on one message.
type Result struct {
	Outcome Outcome
	// Delay before redelivery, for Retry. Zero means Config.RetryDelay.
	Delay time.Duration
	// Reason is logged for Retry and Poison, and is the dead-letter reason
	// (header Natter-DLQ-Reason, TermWithReason) for Poison.
	Reason string
}

// All returns n copies of r: the results of a batch that succeeded or failed
// as a whole.
func All(n int, r Result) []Result {
	rs := make([]Result, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

// Handler processes a batch of messages for one worker role.
//
// Handle returns one Result per message, in the order of msgs. It must not
// acknowledge the messages itself, nor keep msgs after it returns. ctx is
// cancelled only when a Stop gives up waiting (its context ends).
type Handler interface {
	Handle(ctx context.Context, msgs []jetstream.Msg) []Result
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, msgs []jetstream.Msg) []Result

// Handle calls f(ctx, msgs).
func (f HandlerFunc) Handle(ctx context.Context, msgs []jetstream.Msg) []Result {
	return f(ctx, msgs)
}
