package fanout

import (
	"context"
	"github.com/natter-im/natter/jetstream/convapi"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/tracing"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// DefaultBroadcastMin is the member count from which a conversation's
// batches are broadcast to the edges instead of published per member.
const DefaultBroadcastMin = 64

// DefaultConvBroadcastMin is the member count from which a broadcast
// names its conversation instead of listing the members (each edge looks
// them up in its member cache).
const DefaultConvBroadcastMin = 1_000

// Handler fans log entries out to members.
type Handler struct {
	nc               *nats.Conn
	members          *convapi.MemberCache
	lg               *slog.Logger
	broadcastMin     int
	convBroadcastMin int
}

var _ runner.Handler = (*Handler)(nil)

// Option configures a [Handler].
type Option func(*Handler)

// WithBroadcastMin sets the member count from which a conversation's
// batches go once to every edge on subjects.DeliverGroups instead of once
// per member; 0 means never. Without it: [DefaultBroadcastMin].
func WithBroadcastMin(n int) Option { return func(h *Handler) { h.broadcastMin = max(n, 0) } }

// WithConvBroadcastMin sets the member count from which a broadcast carries
// the conversation's id instead of its member list ([delivery.PackConv]): the
// list would cost every message, and every edge, in proportion to the
// group, where the edges' member caches cost a load per member change. 0
// means never. Without it: [DefaultConvBroadcastMin].
func WithConvBroadcastMin(n int) Option { return func(h *Handler) { h.convBroadcastMin = max(n, 0) } }

// New returns the fan-out handler.
func New(nc *nats.Conn, members *convapi.MemberCache, logger *slog.Logger, opts ...Option) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{nc: nc, members: members, lg: logger, broadcastMin: DefaultBroadcastMin, convBroadcastMin: DefaultConvBroadcastMin}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Handle publishes the batch's entries to every member of their
// conversation, in log order: the entries of one conversation go to a
// member in one message (package delivery), so a burst into a group costs
// one publish per member, not one per member and entry. A conversation of
// at least the broadcast minimum of members has its entries published once
// (or a few times, when the member list and the entries do not fit in one
// message) on the broadcast subject with the member list instead: every
// edge gets them and queues them on the sockets of the listed members it
// holds. Core NATS is at most once: a device that misses a push sees the
// seq gap and syncs, so a failure here retries only when nothing could be
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
		} else if err := h.publish(conv, members, entriesOf(msgs, idx), maxBytes, tracing.InjectBatch(ctx, idx, nil)); err != nil {
			outcome = runner.Result{Outcome: runner.Retry, Reason: "fanout: publish failed: " + err.Error()}
		}
		for _, i := range idx {
			res[i] = outcome
		}
	}
	return res
}

// entriesOf returns the data of msgs[idx...].
func entriesOf(msgs []jetstream.Msg, idx []int) [][]byte {
	entries := make([][]byte, len(idx))
	for k, i := range idx {
		entries[k] = msgs[i].Data()
	}
	return entries
}

// publish sends entries to members: broadcast or per member.
// trace, when not nil, is the trace context of a traced entry among them
// (tracing.InjectBatch): every payload carries it.
func (h *Handler) publish(conv string, members []string, entries [][]byte, maxBytes int, trace nats.Header) error {
	if h.broadcast(len(members), entries, maxBytes) {
		payloads := delivery.PackMembers(members, entries, maxBytes)
		if h.convBroadcastMin > 0 && len(members) >= h.convBroadcastMin {
			payloads = delivery.PackConv(conv, entries, maxBytes)
		}
		for _, p := range payloads {
			p.Header = traced(p.Header, trace)
			if err := h.nc.PublishMsg(p.Msg(subjects.DeliverGroups)); err != nil {
				return err
			}
		}
		return nil
	}
	payloads := delivery.Pack(entries, maxBytes)
	for i := range payloads {
		payloads[i].Header = traced(payloads[i].Header, trace)
	}
	for _, u := range members {
		subj := subjects.Deliver(u)
		for _, p := range payloads {
			if err := h.nc.PublishMsg(p.Msg(subj)); err != nil {
				return err
			}
		}
	}
	return nil
}

// broadcast reports whether entries go to n members as a broadcast: n is
// at least the minimum and no entry takes more than half a message (a
// larger one would leave little room for the list and travel in a
// message per member or so anyway: the per-member path does that without
// the list).
func (h *Handler) broadcast(n int, entries [][]byte, maxBytes int) bool {
	if h.broadcastMin == 0 || n < h.broadcastMin {
		return false
	}
	for _, e := range entries {
		if len(e) > maxBytes/2 {
			return false
		}
	}
	return true
}

// traced returns h with the trace context of trace added (h itself when
// trace is nil).
func traced(h, trace nats.Header) nats.Header {
	if trace == nil {
		return h
	}
	out := make(nats.Header, len(h)+len(trace))
	for k, v := range h {
		out[k] = v
	}
	for k, v := range trace {
		out[k] = v
	}
	return out
}
