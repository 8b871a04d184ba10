package convsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// change validates a members.add / members.remove request and loads the
// conversation with its members, checking the caller is one of them.
func (s *service) change(ctx context.Context, in *ChangeMembersRequest) (natter.Conversation, []string, error) {
	var c natter.Conversation
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return c, nil, err
	}
	if len(in.Users) == 0 {
		return c, nil, badFrame("users", "missing: at least one user")
	}
	if len(in.Users) > s.cfg.MaxUsersPerRequest {
		return c, nil, tooManyUsers("users", len(in.Users), s.cfg.MaxUsersPerRequest)
	}
	users, err := userList("users", in.Users, "")
	if err != nil {
		return c, nil, err
	}
	c, err = s.st.GetConversation(ctx, in.Conv, true)
	if errors.Is(err, store.ErrNotFound) {
		return c, nil, errNotMember
	}
	if err != nil {
		return c, nil, err
	}
	if !slices.Contains(c.Members, in.User) {
		return c, nil, errNotMember
	}
	if c.Kind != natter.KindGroup {
		return c, nil, &Error{Code: CodeForbidden, Msg: "the members of a direct conversation cannot change"}
	}
	return c, users, nil
}

// membersAdd adds users. All of them are written even when already members,
// so that retrying a request that failed half way repairs the users' lists.
func (s *service) membersAdd(ctx context.Context, in *ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if err != nil {
		return nil, err
	}
	return s.add(ctx, c, in.User, users, errNotMember)
}

// add writes users into conversation c (loaded with its members), publishes
// the notice and member_joined for those who were not members. gone is
// the error for a conversation that is gone.
func (s *service) add(ctx context.Context, c natter.Conversation, actor string, users []string, gone error) (any, error) {
	have := make(map[string]struct{}, len(c.Members)+len(users))
	for _, m := range c.Members {
		have[m] = struct{}{}
	}
	for _, u := range users {
		have[u] = struct{}{}
	}
	if len(have) > s.cfg.MaxGroupSize {
		return nil, groupTooBig(len(have), s.cfg.MaxGroupSize)
	}
	err := s.st.AddMembers(ctx, c.ID, users)
	s.notify(c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, gone
	}
	if err != nil {
		return nil, err
	}
	_, joined := diff(c.Members, users)
	s.joined(ctx, c.ID, actor, joined)
	return empty{}, nil
}

// remove takes users out of conversation c, publishes the notice and
// member_left for those who were members.
func (s *service) remove(ctx context.Context, c natter.Conversation, actor string, users []string, gone error) (any, error) {
	err := s.st.RemoveMembers(ctx, c.ID, users)
	s.notify(c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, gone
	}
	if err != nil {
		return nil, err
	}
	left, _ := diff(c.Members, users)
	s.left(ctx, c.ID, actor, left)
	return empty{}, nil
}

// membersRemove removes users: anyone may remove themselves, the creator
// may remove anyone. Users who are not members are no change.
func (s *service) membersRemove(ctx context.Context, in *ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if err != nil {
		return nil, err
	}
	if in.User != c.CreatedBy {
		for i, u := range users {
			if u != in.User {
				return nil, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("users[%d]: only the creator may remove other members", i)}
			}
		}
	}
	return s.remove(ctx, c, in.User, users, errNotMember)
}

func (s *service) membersList(ctx context.Context, in *MembersRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	c, err := s.loadMembers(ctx, in.Conv, in.After)
	if errors.Is(err, ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(c.Members, in.User) {
		return nil, errNotMember
	}
	return s.membersPage(c.Members, in.After), nil
}

// members is the internal lookup of the fan-out worker and member caches:
// no acting user, not_found for an unknown conversation.
func (s *service) members(ctx context.Context, in *MembersRequest) (any, error) {
	if err := validIDs("conv", in.Conv); err != nil {
		return nil, err
	}
	c, err := s.loadMembers(ctx, in.Conv, in.After)
	if err != nil {
		return nil, err
	}
	return s.membersPage(c.Members, in.After), nil
}

func (s *service) loadMembers(ctx context.Context, conv, after string) (natter.Conversation, error) {
	if after != "" {
		if err := subjects.ValidID(after); err != nil {
			return natter.Conversation{}, badID("after", err)
		}
	}
	c, err := s.st.GetConversation(ctx, conv, true)
	if errors.Is(err, store.ErrNotFound) {
		return c, notFound(conv)
	}
	return c, err
}

// membersPage returns the sorted page of members after after, as many as
// surely fit the max payload with ids of the longest length.
func (s *service) membersPage(members []string, after string) MembersReply {
	members = slices.Clone(members)
	slices.Sort(members)
	per := int(s.nc.MaxPayload()-1024) / (subjects.MaxIDLen + 3)
	page, next := pageAfter(members, after, max(1, min(MaxMembersPage, per)))
	if page == nil {
		page = []string{}
	}
	return MembersReply{Members: page, Next: next}
}
