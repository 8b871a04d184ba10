package convsvc

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"time"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
)

// Ops on behalf of internal services (the service API's conv.create,
// members.add and members.remove). A service is trusted: it may change any
// group without being a member, and it learns whether a conversation
// exists (not_found). NATS permissions keep these subjects to the api role.

func (s *service) serviceCreate(ctx context.Context, in *convapi.ServiceCreateRequest) (any, error) {
	if err := validIDs("service", in.Service); err != nil {
		return nil, err
	}
	if len(in.Members) > s.cfg.MaxUsersPerRequest {
		return nil, tooManyUsers("members", len(in.Members), s.cfg.MaxUsersPerRequest)
	}
	members, err := userList("members", in.Members, "")
	if err != nil {
		return nil, err
	}
	c := natter.Conversation{Kind: in.Kind, CreatedBy: in.Service, CreatedAt: time.Now().UnixMilli()}
	switch in.Kind {
	case natter.KindDirect:
		if len(members) != 2 {
			return nil, badFrame("members", fmt.Sprintf("a direct conversation has exactly two different users, got %d", len(members)))
		}
		if in.Name != "" {
			return nil, badFrame("name", "a direct conversation has no name")
		}
		c.ID = natter.DirectID(members[0], members[1])
	case natter.KindGroup:
		if len(members) == 0 {
			return nil, badFrame("members", "missing: at least one user")
		}
		if len(in.Name) > convapi.MaxNameLen || !utf8.ValidString(in.Name) {
			return nil, badFrame("name", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", convapi.MaxNameLen))
		}
		if len(members) > s.cfg.MaxGroupSize {
			return nil, groupTooBig(len(members), s.cfg.MaxGroupSize)
		}
		if c.ID, err = groupID(); err != nil {
			return nil, err
		}
		c.Name = in.Name
	case "":
		return nil, badFrame("kind", `missing: "direct" or "group"`)
	default:
		return nil, badFrame("kind", fmt.Sprintf(`%q: want "direct" or "group"`, in.Kind))
	}
	c.Members = members
	return s.store(ctx, c)
}

// serviceChange validates a service.members.* request and loads the group.
func (s *service) serviceChange(ctx context.Context, in *convapi.ServiceMembersRequest) (natter.Conversation, []string, error) {
	var c natter.Conversation
	if err := validIDs("service", in.Service, "conv", in.Conv); err != nil {
		return c, nil, err
	}
	users, err := s.changedUsers(in.Users)
	if err != nil {
		return c, nil, err
	}
	c, err = s.st.GetConversation(ctx, in.Conv, false)
	if errors.Is(err, store.ErrNotFound) {
		return c, nil, notFound(in.Conv)
	}
	if err != nil {
		return c, nil, err
	}
	if c.Kind != natter.KindGroup {
		return c, nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: "the members of a direct conversation cannot change"}
	}
	return c, users, nil
}

func (s *service) serviceMembersAdd(ctx context.Context, in *convapi.ServiceMembersRequest) (any, error) {
	c, users, err := s.serviceChange(ctx, in)
	if err != nil {
		return nil, err
	}
	return s.add(ctx, c, in.Service, users)
}

func (s *service) serviceMembersRemove(ctx context.Context, in *convapi.ServiceMembersRequest) (any, error) {
	c, users, err := s.serviceChange(ctx, in)
	if err != nil {
		return nil, err
	}
	return s.remove(ctx, c, in.Service, users)
}

func notFound(conv string) *convapi.Error {
	return &convapi.Error{Code: convapi.CodeNotFound, Msg: "no conversation " + conv}
}
