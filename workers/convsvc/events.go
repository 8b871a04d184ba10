package convsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/events"
)

// Events are published after the store write they report, and before the
// reply: a caller that got its reply finds the event on the stream. A
// publish that still fails after the publisher's retries is logged and the
// request succeeds all the same (the change is made; failing the request
// would not bring the event back, because a retried request finds nothing
// left to change).

// publish stores ev on the event stream, if events are configured.
func (s *service) publish(ctx context.Context, ev natter.Event, err error) {
	if s.cfg.Events == nil {
		return
	}
	if err == nil {
		err = s.cfg.Events.Publish(ctx, ev)
	}
	if err != nil {
		s.log.Error("event not published", "kind", ev.Kind, "conv", ev.Conv, "id", ev.ID, "err", err)
	}
}

// created publishes conversation_created. A conversation whose event would
// not fit the max payload (a group of tens of thousands of members) is
// published without its member list; read it with members.
func (s *service) created(ctx context.Context, c natter.Conversation) {
	if s.cfg.Events == nil {
		return
	}
	ev, err := events.ConversationCreated(c)
	if err == nil && int64(len(ev.Data))+1024 > s.nc.MaxPayload() {
		c.Members = nil
		ev, err = events.ConversationCreated(c)
	}
	s.publish(ctx, ev, err)
}

// joined publishes member_joined for users (if any) with a version of its
// own: every change is a new event.
func (s *service) joined(ctx context.Context, conv, actor string, users []string) {
	if s.cfg.Events == nil || len(users) == 0 {
		return
	}
	ev, err := events.MembersJoined(conv, actor, version(), users, time.Now().UnixMilli())
	s.publish(ctx, ev, err)
}

// left publishes member_left for users (if any).
func (s *service) left(ctx context.Context, conv, actor string, users []string) {
	if s.cfg.Events == nil || len(users) == 0 {
		return
	}
	ev, err := events.MembersLeft(conv, actor, version(), users, time.Now().UnixMilli())
	s.publish(ctx, ev, err)
}

// version names one member change: 16 random bytes in hex.
func version() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
