package convsvc

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"slices"

	natter "github.com/natter-im/natter"
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
// conversation with its members, checking the caller is one of them.
func (s *service) change(ctx context.Context, in *convapi.ChangeMembersRequest) (natter.Conversation, []string, error) {
	var c natter.Conversation
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return c, nil, err
	}
	users, err := s.changedUsers(in.Users)
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
		return c, nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: "the members of a direct conversation cannot change"}
	}
	return c, users, nil
}

// membersAdd adds users. All of them are written even when already members,
// so that retrying a request that failed half way repairs the users' lists.
func (s *service) membersAdd(ctx context.Context, in *convapi.ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if err != nil {
		return nil, err
	}
	return s.add(ctx, c, in.User, users, errNotMember)
}

// maxChangeAttempts bounds the read-diff-write rounds of one member change
// that other changes of the same conversation keep overtaking.
const maxChangeAttempts = 5

// errBusy is the reply to a member change overtaken maxChangeAttempts times.
var errBusy = &convapi.Error{Code: convapi.CodeUnavailable, Msg: "the members are changing concurrently, retry later"}

// add writes users into conversation c (loaded with its members), publishes
// the notice and member_joined for those who were not members. gone is
// the error for a conversation that is gone.
//
// The diff is taken from c as read and the write is conditional on c's rev
// (when it reports an event), so only a real change produces an event, and
// exactly one: a write overtaken by another change reads c again and
// retries.
func (s *service) add(ctx context.Context, c natter.Conversation, actor string, users []string, gone error) (any, error) {
	for attempt := 1; ; attempt++ {
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
		_, joined := diff(c.Members, users)
		ch, err := s.memberChange(c, actor, joined, events.MembersJoined)
		if err != nil {
			return nil, err
		}
		err = s.st.AddMembers(ctx, c.ID, users, ch)
		s.notify(c.ID, users)
		if again, rerr := s.overtaken(ctx, &c, err, attempt); again {
			continue
		} else if rerr != nil {
			return nil, goneAs(rerr, gone)
		}
		s.flush(ctx, c.ID, ch.Outbox)
		return empty{}, nil
	}
}

// remove takes users out of conversation c, publishes the notice and
// member_left for those who were members (see add).
func (s *service) remove(ctx context.Context, c natter.Conversation, actor string, users []string, gone error) (any, error) {
	for attempt := 1; ; attempt++ {
		left, _ := diff(c.Members, users)
		ch, err := s.memberChange(c, actor, left, events.MembersLeft)
		if err != nil {
			return nil, err
		}
		err = s.st.RemoveMembers(ctx, c.ID, users, ch)
		s.notify(c.ID, users)
		if again, rerr := s.overtaken(ctx, &c, err, attempt); again {
			continue
		} else if rerr != nil {
			return nil, goneAs(rerr, gone)
		}
		s.flush(ctx, c.ID, ch.Outbox)
		return empty{}, nil
	}
}

// overtaken reports whether the member write that returned err lost to a
// concurrent change and may be tried again, having read *c again; otherwise
// it returns the error to fail with (nil on success).
func (s *service) overtaken(ctx context.Context, c *natter.Conversation, err error, attempt int) (bool, error) {
	if !errors.Is(err, store.ErrConflict) {
		return false, err
	}
	if attempt >= maxChangeAttempts {
		return false, errBusy
	}
	fresh, err := s.st.GetConversation(ctx, c.ID, true)
	if err != nil {
		return false, err
	}
	*c = fresh
	return true, nil
}

// goneAs maps a store not-found to gone.
func goneAs(err, gone error) error {
	if errors.Is(err, store.ErrNotFound) {
		return gone
	}
	return err
}

// membersRemove removes users: anyone may remove themselves, the creator
// may remove anyone. Users who are not members are no change.
func (s *service) membersRemove(ctx context.Context, in *convapi.ChangeMembersRequest) (any, error) {
	c, users, err := s.change(ctx, in)
	if err != nil {
		return nil, err
	}
	if in.User != c.CreatedBy {
		for i, u := range users {
			if u != in.User {
				return nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: fmt.Sprintf("users[%d]: only the creator may remove other members", i)}
			}
		}
	}
	return s.remove(ctx, c, in.User, users, errNotMember)
}

func (s *service) membersList(ctx context.Context, in *convapi.MembersRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	c, err := s.loadMembers(ctx, in.Conv, in.After)
	if errors.Is(err, convapi.ErrNotFound) {
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
func (s *service) members(ctx context.Context, in *convapi.MembersRequest) (any, error) {
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
func (s *service) membersPage(members []string, after string) convapi.MembersReply {
	members = slices.Clone(members)
	slices.Sort(members)
	per := int(s.nc.MaxPayload()-1024) / (subjects.MaxIDLen + 3)
	page, next := pageAfter(members, after, max(1, min(convapi.MaxMembersPage, per)))
	if page == nil {
		page = []string{}
	}
	return convapi.MembersReply{Members: page, Next: next}
}
