package convsvc

import (
	"context"
	"strconv"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// Member and conversation events go through the conversation's outbox: the
// store write that makes a change also pushes its event into the outbox of
// the conversation document (one single-document write). After the write
// the request publishes the event (Nats-Msg-Id = its id) and pulls it from
// the outbox, before the reply: a caller that got its reply normally finds
// the event on the stream. A publish that fails (JetStream unreachable)
// leaves the event in the outbox and the request succeeds all the same; the
// sweeper ([service.sweep]) publishes it later.
//
// read_moved has no outbox: a read whose event cannot be published fails
// with unavailable, and the retried read publishes it (same id).

// createdOutbox returns the outbox of new conversation c: its
// conversation_created event, if events are configured. A conversation
// whose event would not fit the max payload (a group of tens of thousands
// of members) gets one without its member list; read it with members.
func (s *service) createdOutbox(c natter.Conversation) ([]store.Pending, error) {
	if s.cfg.Events == nil {
		return nil, nil
	}
	ev, err := events.ConversationCreated(c)
	if err == nil && int64(len(ev.Data))+1024 > s.nc.MaxPayload() {
		c.Members = nil
		ev, err = events.ConversationCreated(c)
	}
	if err != nil {
		return nil, err
	}
	return []store.Pending{{Event: ev, At: time.Now().UnixMilli()}}, nil
}

// memberChange returns the store change of users joining or leaving
// conversation c (as read): with events configured and users not empty, a
// change conditional on c.Rev whose event (made by mk) is named by the next
// rev, "join:<conv>:<rev>" or "leave:<conv>:<rev>". Otherwise an
// unconditional change without events.
func (s *service) memberChange(c natter.Conversation, actor string, users []string,
	mk func(conv, actor, version string, users []string, ts int64) (natter.Event, error),
) (store.Change, error) {
	if s.cfg.Events == nil || len(users) == 0 {
		return store.Change{}, nil
	}
	now := time.Now().UnixMilli()
	ev, err := mk(c.ID, actor, strconv.FormatInt(c.Rev+1, 10), users, now)
	if err != nil {
		return store.Change{}, err
	}
	return store.Change{Rev: c.Rev, Outbox: []store.Pending{{Event: ev, At: now}}}, nil
}

// flush publishes the pending events of conv just written and pulls each
// published one from the outbox. What fails stays for the sweeper.
func (s *service) flush(ctx context.Context, conv string, outbox []store.Pending) {
	for _, p := range outbox {
		if err := s.cfg.Events.Publish(ctx, p.Event); err != nil {
			s.log.Warn("event not published yet, left in the outbox", "kind", p.Kind, "conv", conv, "id", p.ID, "err", err)
			continue
		}
		if err := s.st.Published(ctx, conv, p); err != nil {
			s.log.Warn("published event not pulled from the outbox", "conv", conv, "id", p.ID, "err", err)
		}
	}
}

// diff splits users into those in members and those not.
func diff(members, users []string) (in, out []string) {
	set := make(map[string]struct{}, len(members))
	for _, m := range members {
		set[m] = struct{}{}
	}
	for _, u := range users {
		if _, ok := set[u]; ok {
			in = append(in, u)
		} else {
			out = append(out, u)
		}
	}
	return in, out
}
