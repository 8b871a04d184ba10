package convsvc

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"strings"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// changedUsers validates the users of a member change: 1..MaxUsersPerRequest
// valid ids, deduplicated.
func (s *service) changedUsers(users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, badFrame("users", "missing: at least one user")
	}
	if len(users) > s.cfg.MaxUsersPerRequest {
		return nil, tooManyUsers("users", len(users), s.cfg.MaxUsersPerRequest)
	}
	return userList("users", users, "")
}

// change validates a members.add / members.remove request and loads the
// conversation (without members), checking the caller is one of them.
func (s *service) change(ctx context.Context, in *convapi.ChangeMembersRequest) (natter.Conversation, []string, error) {
	var c natter.Conversation
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return c, nil, err
	}
	users, err := s.changedUsers(in.Users)
	if err != nil {
		return c, nil, err
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return c, users, err // the users tell a leave (membersRemove)
	}
	c, err = s.st.GetConversation(ctx, in.Conv, false)
	if errors.Is(err, store.ErrNotFound) {
		return c, users, errNotMember
	}
	if err != nil {
		return c, nil, err
	}
	if c.Kind != natter.KindGroup {
		return c, nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: "the members of a direct conversation cannot change"}
	}
	return c, users, nil
}

// membersAdd adds users; those already members are no change (naming them
// again completes a change to them that was cut short).
func (s *service) membersAdd(ctx context.Context, in *convapi.ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if err != nil {
		return nil, err
	}
	m, err := s.groupMod(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := permit(c, m, in.User, convapi.ActAddMembers); err != nil {
		return nil, err
	}
	return s.add(ctx, c, in.User, users)
}

// add writes users into group c, publishes the notice and member_joined
// for those who were not members, and pushes the change (push.go). The
// store serialises the member changes of one group across every replica (a
// lease lock) and writes the event to the outbox before the change, so
// exactly one event names each join.
func (s *service) add(ctx context.Context, c natter.Conversation, actor string, users []string) (any, error) {
	ev, made := s.memberEvent(c.ID, actor, events.MembersJoined)
	ch, err := s.st.AddMembers(ctx, c.ID, users, s.cfg.MaxGroupSize, ev)
	s.dropSummary(ctx, c.ID)
	s.notify(c.ID, users, err == nil)
	var tb *store.TooBigError
	if errors.As(err, &tb) {
		return nil, groupTooBig(tb.Have, tb.Max)
	}
	if err != nil {
		return nil, err
	}
	s.flush(ctx, c.ID, *made)
	s.pushMembers(ctx, c.ID, actor, protocol.ConvAdded, ch)
	return empty{}, nil
}

// remove takes users out of group c, publishes the notice and member_left
// for those who were members, and pushes the change (see add).
func (s *service) remove(ctx context.Context, c natter.Conversation, actor string, users []string) (any, error) {
	ev, made := s.memberEvent(c.ID, actor, events.MembersLeft)
	ch, err := s.st.RemoveMembers(ctx, c.ID, users, ev)
	s.dropSummary(ctx, c.ID)
	s.notify(c.ID, users, err == nil)
	if err != nil {
		return nil, err
	}
	s.flush(ctx, c.ID, *made)
	s.pushMembers(ctx, c.ID, actor, protocol.ConvRemoved, ch)
	return empty{}, nil
}

// membersRemove removes users: a member may remove themselves (leave,
// except the owner), the owner anyone, an admin plain members (convapi.Permit);
// anything else is forbidden. Users who are not
// members are no change, and so is a user who is not a member leaving (of
// any conversation, known or not): a leave retried after its reply was lost
// (it timed out, but the leave was done) succeeds.
func (s *service) membersRemove(ctx context.Context, in *convapi.ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if errors.Is(err, errNotMember) && len(users) == 1 && users[0] == in.User {
		return empty{}, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := s.groupMod(ctx, c)
	if err != nil {
		return nil, err
	}
	for i, u := range users {
		act := convapi.ActRemoveMember
		if u == in.User {
			act = convapi.ActLeave
		}
		if err := permit(c, m, in.User, act, u); err != nil {
			var ce *convapi.Error
			if errors.As(err, &ce) {
				return nil, &convapi.Error{Code: ce.Code, Msg: strings.Replace(ce.Msg, "users[0]", fmt.Sprintf("users[%d]", i), 1)}
			}
			return nil, err
		}
	}
	return s.remove(ctx, c, in.User, users)
}

func (s *service) membersList(ctx context.Context, in *convapi.MembersRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	members, err := s.loadMembers(ctx, in.Conv, in.After)
	if errors.Is(err, convapi.ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	return s.membersPage(members, in.After), nil
}

// members is the internal lookup of the fan-out worker and member caches:
// no acting user, not_found for an unknown conversation.
func (s *service) members(ctx context.Context, in *convapi.MembersRequest) (any, error) {
	if err := validIDs("conv", in.Conv); err != nil {
		return nil, err
	}
	members, err := s.loadMembers(ctx, in.Conv, in.After)
	if err != nil {
		return nil, err
	}
	page := s.membersPage(members, in.After)
	if in.After == "" && !natter.IsGroupID(in.Conv) {
		blockers, err := s.blockers(ctx, members)
		if err != nil {
			return nil, err
		}
		if len(blockers) > 0 {
			page.Mod = &convapi.Moderation{Blockers: blockers}
		}
	}
	if in.After == "" && natter.IsGroupID(in.Conv) {
		// The send checks of the member caches (edge, fan-out): two
		// lookups by _id per load, not per message.
		m, _, err := s.st.Moderation(ctx, in.Conv)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		mod := apiMod(m)
		page.Mod = &mod
	}
	return page, nil
}

// loadMembers returns the members of conv, sorted (shared: do not modify),
// from the instance's cache of member lists when there is one: the pages
// of a large group's list read it once.
func (s *service) loadMembers(ctx context.Context, conv, after string) ([]string, error) {
	if after != "" {
		if err := subjects.ValidID(after); err != nil {
			return nil, badID("after", err)
		}
	}
	if s.lists != nil {
		return s.lists.memberList(ctx, conv)
	}
	return s.storeMembers(ctx, conv)
}

// membersPage returns the sorted page of members after after, as many as
// surely fit the max payload with ids of the longest length.
func (s *service) membersPage(members []string, after string) convapi.MembersReply {
	per := int(s.nc.MaxPayload()-1024) / (subjects.MaxIDLen + 3)
	page, next := pageAfter(members, after, max(1, min(convapi.MaxMembersPage, per)))
	if page == nil {
		page = []string{}
	}
	return convapi.MembersReply{Members: page, Next: next}
}
