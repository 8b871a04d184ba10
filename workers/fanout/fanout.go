package fanout

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/delivery"
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

// Handle publishes the batch's entries to every member of their
// conversation on the member's delivery subject, in log order: the entries
// of one conversation go to a member in one message (package delivery), so
// a burst into a group costs one publish per member, not one per member and
// entry. Core NATS is at most once: a device that misses a push sees the seq
// gap and syncs, so a failure here retries only when nothing could be
// published at all.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	// The batch's entries by conversation, each list in log order.
	var order []string
	byConv := make(map[string][]int)
	for i, m := range msgs {
		conv := subjects.ConvFromMsg(m.Subject())
		if conv == "" {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "fanout: not a log subject: " + m.Subject()}
			continue
		}
		if _, ok := byConv[conv]; !ok {
			order = append(order, conv)
		}
		byConv[conv] = append(byConv[conv], i)
	}
	maxBytes := int(h.nc.MaxPayload()) - 1024 // room for the header
	for _, conv := range order {
		idx := byConv[conv]
		outcome := runner.Result{Outcome: runner.Ack}
		members, err := h.members.Members(ctx, conv)
		if err != nil {
			outcome = runner.Result{Outcome: runner.Retry, Reason: "fanout: members of " + conv + ": " + err.Error()}
		} else {
			entries := make([][]byte, len(idx))
			for k, i := range idx {
				entries[k] = msgs[i].Data()
			}
			payloads := delivery.Pack(entries, maxBytes)
		publish:
			for _, u := range members {
				subj := subjects.Deliver(u)
				for _, p := range payloads {
					if err := h.nc.PublishMsg(p.Msg(subj)); err != nil {
						outcome = runner.Result{Outcome: runner.Retry, Reason: "fanout: publish failed: " + err.Error()}
						break publish
					}
				}
			}
		}
		for _, i := range idx {
			res[i] = outcome
		}
	}
	return res
}
