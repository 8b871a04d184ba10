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

// memberEvent returns the store's maker of the event of a member change of
// conv by actor (mk: member_joined or member_left), named by the change's
// rev: "join:<conv>:<rev>" or "leave:<conv>:<rev>", and the events it made,
// for [service.flush] after the change. Nil without events.
func (s *service) memberEvent(conv, actor string,
	mk func(conv, actor, version string, users []string, ts int64) (natter.Event, error),
) (store.EventFunc, *[]store.Pending) {
	made := new([]store.Pending)
	if s.cfg.Events == nil {
		return nil, made
	}
	return func(rev int64, users []string) (store.Pending, error) {
		now := time.Now().UnixMilli()
		ev, err := mk(conv, actor, strconv.FormatInt(rev, 10), users, now)
		p := store.Pending{Event: ev, At: now}
		if err == nil {
			*made = append(*made, p)
		}
		return p, err
	}, made
}

// flush publishes the pending events of conv just written and pulls each
// published one from the outbox: a conversation_created in the background
// (batched with the other creates' pulls: a create does not wait for that
// write), the others before returning. What fails stays for the sweeper.
func (s *service) flush(ctx context.Context, conv string, outbox []store.Pending) {
	for _, p := range outbox {
		if err := s.cfg.Events.Publish(ctx, p.Event); err != nil {
			s.log.Warn("event not published yet, left in the outbox", "kind", p.Kind, "conv", conv, "id", p.ID, "err", err)
			continue
		}
		if p.Kind == natter.EventConversationCreated {
			s.st.PublishedLater(conv, p)
			continue
		}
		if err := s.st.Published(ctx, conv, p); err != nil {
			s.log.Warn("published event not pulled from the outbox", "conv", conv, "id", p.ID, "err", err)
		}
	}
}
