package convsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/blocks"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Blocking (docs/protocol.md, "block, unblock, blocks.list"): a user's
// blocks are a key of the PRESENCE bucket (jetstream/blocks). A change
// publishes the blocker's new list on the blocker's presence subject (the
// edges watching the blocker's presence stop or resume showing it to the
// users concerned) and a membership notice for each direct conversation
// of the pair (the member caches reload it, with the blockers the send
// check reads). Group messages are not filtered.

var errNoBlocks = convapi.Unavailable("blocking is not configured on this conversations service", nil)

// block is the block op.
func (s *service) block(ctx context.Context, in *convapi.BlockRequest) (any, error) {
	return s.changeBlocks(ctx, in, true)
}

// unblock is the unblock op.
func (s *service) unblock(ctx context.Context, in *convapi.BlockRequest) (any, error) {
	return s.changeBlocks(ctx, in, false)
}

func (s *service) changeBlocks(ctx context.Context, in *convapi.BlockRequest, block bool) (any, error) {
	if err := validIDs("user", in.User); err != nil {
		return nil, err
	}
	users, err := s.changedUsers(in.Users)
	if err != nil {
		return nil, err
	}
	for i, u := range users {
		if u == in.User {
			return nil, badFrame(fmt.Sprintf("users[%d]", i), "you cannot block yourself")
		}
	}
	if s.cfg.Blocks == nil {
		return nil, errNoBlocks
	}
	after, changed, err := s.cfg.Blocks.Update(ctx, in.User, users, block)
	if errors.Is(err, blocks.ErrTooMany) {
		return nil, &convapi.Error{Code: convapi.CodeTooBig, Msg: fmt.Sprintf("users: you would block more than %d users: unblock some first", blocks.MaxBlocks)}
	}
	if err != nil {
		return nil, convapi.Unavailable("blocks not written", err)
	}
	if changed {
		if err := s.nc.Publish(subjects.Presence(in.User), blocks.EventBody(after)); err != nil {
			s.log.Warn("blocks event not published: watching edges keep the old blocks until they reload them", "user", in.User, "err", err)
		}
		for _, u := range users {
			s.notify(natter.DirectID(in.User, u), nil, true)
		}
	}
	if after == nil {
		after = []string{}
	}
	return convapi.BlocksReply{Users: after}, nil
}

// blocksList is the blocks op.
func (s *service) blocksList(ctx context.Context, in *convapi.BlockRequest) (any, error) {
	if err := validIDs("user", in.User); err != nil {
		return nil, err
	}
	if s.cfg.Blocks == nil {
		return nil, errNoBlocks
	}
	users, err := s.cfg.Blocks.Get(ctx, in.User)
	if err != nil {
		return nil, convapi.Unavailable("blocks not read", err)
	}
	if users == nil {
		users = []string{}
	}
	return convapi.BlocksReply{Users: users}, nil
}

// blockers returns those of the members of a direct conversation who block
// the other: one read of each's blocks (on a member cache's load, not per
// message). None without a blocks bucket.
func (s *service) blockers(ctx context.Context, members []string) ([]string, error) {
	if s.cfg.Blocks == nil || len(members) != 2 {
		return nil, nil
	}
	var out []string
	for i, m := range members {
		bl, err := s.cfg.Blocks.Get(ctx, m)
		if err != nil {
			return nil, convapi.Unavailable("blocks not read", err)
		}
		if slices.Contains(bl, members[1-i]) {
			out = append(out, m)
		}
	}
	return out, nil
}

// blockedBy answers forbidden when with blocks user (a direct conversation
// they cannot start).
func (s *service) blockedBy(ctx context.Context, user, with string) error {
	if s.cfg.Blocks == nil {
		return nil
	}
	bl, err := s.cfg.Blocks.Get(ctx, with)
	if err != nil {
		return convapi.Unavailable("blocks not read", err)
	}
	if slices.Contains(bl, user) {
		return &convapi.Error{Code: convapi.CodeForbidden, Msg: "blocked: " + with + " does not accept your messages"}
	}
	return nil
}
