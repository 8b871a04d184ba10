package events

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/runner"
)

// batchTimeout bounds the wait for the publish acks of one batch.
const batchTimeout = 10 * time.Second

// Handler is the events worker role: it publishes the event of every log
// entry it gets from its durable consumer on MSGS.
type Handler struct {
	js jetstream.JetStream
	lg *slog.Logger
}

var _ runner.Handler = (*Handler)(nil)

// NewHandler returns the events handler; js publishes to EVENTS.
func NewHandler(js jetstream.JetStream, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{js: js, lg: logger}
}

// Handle publishes one event per entry, all of the batch at once
// (asynchronously, in log order), and acks each entry whose event the
// stream acknowledged (a duplicate ack included: stored before). An entry
// that does not decode is poison; a publish that fails is retried.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		entry, err := msglog.Decode(m.Data(), m.Headers())
		if err != nil {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "events: " + err.Error()}
			continue
		}
		pm, err := MessageMsg(&entry)
		if err != nil {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: err.Error()}
			continue
		}
		if futures[i], err = h.js.PublishMsgAsync(pm); err != nil {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "events: publish: " + err.Error()}
		}
	}
	wait, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			res[i] = runner.Result{Outcome: runner.Ack}
		case err := <-f.Err():
			h.lg.Warn("event not published", "subject", f.Msg().Subject, "err", err)
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "events: publish: " + err.Error()}
		case <-wait.Done():
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "events: publish ack: " + wait.Err().Error()}
		}
	}
	return res
}
