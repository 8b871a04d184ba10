package convsvc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// rename renames a group on behalf of its owner or an admin
// (convapi.Permit; docs/protocol.md, conv.rename). The name has the
// bounds of a create's (1..MaxNameLen bytes of UTF-8; the edge checks 128
// characters). Renaming to the current name is no change: no rev, no
// event, no push. A change takes the group's next rev (shared with its
// member changes, under the same lock), writes conversation_renamed to the
// outbox first, publishes the notice (the conversation's summary is
// cached), the event, and pushes renamed to every member.
func (s *service) rename(ctx context.Context, in *convapi.RenameRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, badFrame("name", "required: a group's name is 1..128 characters")
	}
	if len(in.Name) > convapi.MaxNameLen || !utf8.ValidString(in.Name) {
		return nil, badFrame("name", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", convapi.MaxNameLen))
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	c, err := s.st.GetConversation(ctx, in.Conv, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	if c.Kind != natter.KindGroup {
		return nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: "a direct conversation has no name: only groups can be renamed"}
	}
	m, err := s.groupMod(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := permit(c, m, in.User, convapi.ActRename); err != nil {
		return nil, err
	}
	var made []store.Pending
	var ev store.EventFunc
	if s.cfg.Events != nil {
		ev = func(rev int64, _ []string) (store.Pending, error) {
			now := time.Now().UnixMilli()
			e, err := events.ConversationRenamed(c.ID, in.User, strconv.FormatInt(rev, 10), in.Name, now)
			p := store.Pending{Event: e, At: now}
			if err == nil {
				made = append(made, p)
			}
			return p, err
		}
	}
	ch, err := s.st.RenameGroup(ctx, c.ID, in.Name, ev)
	if err != nil || ch.Changed {
		s.dropSummary(ctx, c.ID)
		s.notify(c.ID, nil, true) // the summaries cached of conv
	}
	if err != nil {
		return nil, err
	}
	s.flush(ctx, c.ID, made)
	if ch.Changed {
		s.push(ctx, c.ID, nil, nil, protocol.ConvPush(protocol.ConvFrame{Conv: c.ID, Event: protocol.ConvRenamed, Rev: ch.Rev, By: in.User, Name: in.Name}), ch.Count)
	}
	return empty{}, nil
}
