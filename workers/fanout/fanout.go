package fanout

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/runner"
)

// Handler fans log entries out to members.
type Handler struct {
	nc      *nats.Conn
	members *convsvc.MemberCache
	lg      *slog.Logger
}

var _ runner.Handler = (*Handler)(nil)

// New returns the fan-out handler.
func New(nc *nats.Conn, members *convsvc.MemberCache, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{nc: nc, members: members, lg: logger}
}

// Handle publishes each message to every member's delivery subject, in log
// order. Core NATS is at most once: a device that misses a push sees the
// seq gap and syncs, so a failure here retries only when nothing could be
// published at all.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	for i, m := range msgs {
		conv := subjects.ConvFromMsg(m.Subject())
		if conv == "" {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "fanout: not a log subject: " + m.Subject()}
			continue
		}
		members, err := h.members.Members(ctx, conv)
		if err != nil {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "fanout: members of " + conv + ": " + err.Error()}
			continue
		}
		data := m.Data()
		failed := false
		for _, u := range members {
			if err := h.nc.Publish(subjects.Deliver(u), data); err != nil {
				failed = true
				break
			}
		}
		if failed {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "fanout: publish failed"}
			continue
		}
		res[i] = runner.Result{Outcome: runner.Ack}
	}
	return res
}
