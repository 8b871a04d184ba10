package convsvc

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// Conversation pushes: after a change that succeeded (a create, a member
// change, a rename) the service pushes its conv frame (docs/protocol.md)
// to the devices of the users concerned, before its reply:
//
//   - to the users the change named: added (with created for a new
//     conversation) or removed, one core-NATS message each on their
//     delivery subject, with the header delivery.SignalHeader "conv"; every
//     edge holding a socket of the user queues the frame as it is (as for
//     typing);
//   - to the other members: members_added, members_removed or renamed.
//     Below cfg.PushBroadcastMin members, one message per member as above
//     (the member list read once: the head and one chunk per 1,000); from
//     it on, one broadcast by conversation on subjects.DeliverGroups
//     (delivery.PackSignal) that every edge gets and delivers to the
//     members it holds, found in its member cache as for a large group's
//     messages: a change costs one message per edge, not one per member.
//     The broadcast lists the users the change named, who got their own
//     frame: an edge whose cache still has the members from before the
//     change delivers to the same users as one that has them after.
//
// Best effort like every push: a frame lost here (a publish that failed, a
// member list that could not be read) is made up by the client's next
// sync and conv.list, which carry each conversation's rev.

// pushHeader marks a conv signal on a delivery subject (shared: never
// changed).
var pushHeader = nats.Header{delivery.SignalHeader: []string{delivery.SignalConv}}

// push publishes mine to each user of named and rest to every other member
// of conv (count members after the change). Either frame may be nil.
func (s *service) push(ctx context.Context, conv string, named []string, mine, rest []byte, count int) {
	if mine != nil {
		for _, u := range named {
			if err := s.nc.PublishMsg(&nats.Msg{Subject: subjects.Deliver(u), Header: pushHeader, Data: mine}); err != nil {
				s.log.Warn("conv push not published", "conv", conv, "err", err)
				return
			}
		}
	}
	if rest == nil || count <= 0 {
		return
	}
	if s.cfg.PushBroadcastMin > 0 && count >= s.cfg.PushBroadcastMin {
		p := delivery.PackSignal(conv, delivery.SignalConv, rest, named)
		if err := s.nc.PublishMsg(p.Msg(subjects.DeliverGroups)); err != nil {
			s.log.Warn("conv push broadcast not published", "conv", conv, "err", err)
		}
		return
	}
	members, err := s.loadMembers(ctx, conv, "")
	if err != nil {
		s.log.Warn("conv push: members not read, the rest of the group learns by sync", "conv", conv, "err", err)
		return
	}
	skip := make(map[string]struct{}, len(named))
	for _, u := range named {
		skip[u] = struct{}{}
	}
	for _, u := range members {
		if _, ok := skip[u]; ok {
			continue
		}
		if err := s.nc.PublishMsg(&nats.Msg{Subject: subjects.Deliver(u), Header: pushHeader, Data: rest}); err != nil {
			s.log.Warn("conv push not published", "conv", conv, "err", err)
			return
		}
	}
}

// pushMembers pushes a member change by actor: event (added or removed) to
// the users it changed, and the matching members_* event to the rest.
func (s *service) pushMembers(ctx context.Context, conv, actor, event string, ch store.Change) {
	if len(ch.Users) == 0 {
		return
	}
	restEvent := protocol.ConvMembersAdded
	if event == protocol.ConvRemoved {
		restEvent = protocol.ConvMembersRemoved
	}
	rest := protocol.ConvFrame{Conv: conv, Event: restEvent, Rev: ch.Rev, By: actor, N: len(ch.Users), MemberCount: ch.Count}
	if len(ch.Users) <= protocol.MaxConvEventUsers {
		rest.Users = ch.Users
	}
	mine := protocol.ConvPush(protocol.ConvFrame{Conv: conv, Event: event, Rev: ch.Rev, By: actor})
	s.push(ctx, conv, ch.Users, mine, protocol.ConvPush(rest), ch.Count)
}
