package edge

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Typing: a typing frame is checked (rate per connection and conversation,
// membership, group size) and its push is published on core NATS to every
// other member's delivery subject im.dlv.<user> with the header
// delivery.SignalHeader; the edges holding the members' sockets queue it
// as it is. Nothing is stored: a member who is not connected never gets it,
// and it is in no history or sync. A started state carries expires_ms, so
// clients end it by themselves when the typer stops renewing it.

const (
	// maxTypingConvs bounds a connection's typing buckets; past it they
	// start over (a client typing in that many conversations at once is
	// not a person).
	maxTypingConvs = 256
)

// typing answers a typing frame.
func (s *session) typing(ctx context.Context, r *protocol.Request) (any, error) {
	e := s.e
	rd := &s.rd
	b := rd.typing[r.Conv]
	if b == nil {
		if rd.typing == nil || len(rd.typing) >= maxTypingConvs {
			rd.typing = map[string]*bucket{}
		}
		nb := newBucket(e.cfg.TypingRate, e.cfg.TypingBurst)
		b = &nb
		rd.typing[r.Conv] = b
	}
	if !b.take(time.Now()) {
		return nil, &protocol.Error{Code: protocol.CodeRateLimited, Msg: "typing: at most " + strconv.FormatFloat(e.cfg.TypingRate, 'g', -1, 64) + " per second per conversation (burst " + strconv.Itoa(e.cfg.TypingBurst) + ")"}
	}
	if err := e.member(ctx, s.user, r.Conv); err != nil {
		return nil, err
	}
	members, err := e.members.Members(ctx, r.Conv)
	if err != nil {
		return nil, err
	}
	if len(members) > e.cfg.TypingMaxMembers {
		return nil, &protocol.Error{Code: protocol.CodeForbidden, Msg: "typing: conversation " + r.Conv + " has " + strconv.Itoa(len(members)) + " members; typing is off above " + strconv.Itoa(e.cfg.TypingMaxMembers)}
	}
	f := protocol.TypingFrame{Conv: r.Conv, User: s.user, State: r.State}
	if r.State == protocol.TypingStarted {
		f.ExpiresMS = protocol.TypingExpiresMS
	}
	frame := protocol.TypingPush(f)
	hdr := nats.Header{delivery.SignalHeader: []string{delivery.SignalTyping}}
	n := 0
	for _, m := range members {
		if m == s.user {
			continue
		}
		if err := e.nc.PublishMsg(&nats.Msg{Subject: subjects.Deliver(m), Header: hdr, Data: frame}); err != nil {
			return nil, err
		}
		n++
	}
	e.m.typingSent.Add(float64(n))
	return struct{}{}, nil
}

// signal queues a signal's frame (its data) on every session of user: a
// typing or reaction push, or a conv push of the conversations service (push.go of
// workers/convsvc). Other kinds are dropped.
func (h *hub) signal(user string, m *nats.Msg) {
	kind := m.Header.Get(delivery.SignalHeader)
	if (kind != delivery.SignalTyping && kind != delivery.SignalConv && kind != delivery.SignalReaction) || len(m.Data) == 0 || m.Data[0] != '{' {
		h.m.badDeliveries.Inc()
		return
	}
	counter := h.m.typingPushes
	switch kind {
	case delivery.SignalConv:
		counter = h.m.convPushes
	case delivery.SignalReaction:
		counter = h.m.reactionPushes
	}
	sh := h.shard(user)
	sh.mu.Lock()
	var targets []*session
	if e := sh.users[user]; e != nil {
		targets = append(targets, e.sessions...)
	}
	sh.mu.Unlock()
	for _, s := range targets {
		if s.enqueue(m.Data) {
			counter.Inc()
		}
	}
}
