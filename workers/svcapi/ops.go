package svcapi

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
)

type empty struct{}

// exists answers not_found unless conv is a conversation.
func (s *service) exists(ctx context.Context, conv string) error {
	_, err := s.d.Members.Members(ctx, conv)
	return err
}

func (s *service) send(ctx context.Context, in *SendRequest) (any, error) {
	if err := CheckSend("service", in.Service, in.Conv, in.Cmid, in.Body, in.Type, s.cfg.MaxBody); err != nil {
		return nil, err
	}
	if err := s.frozen(in.Conv); err != nil {
		return nil, err
	}
	if err := s.exists(ctx, in.Conv); err != nil {
		return nil, err
	}
	return s.d.Log.Append(ctx, msglog.Send{Conv: in.Conv, From: in.Service, Cmid: in.Cmid, Type: in.Type, Body: in.Body})
}

func (s *service) create(ctx context.Context, in *CreateRequest) (any, error) {
	if err := checkID("service", in.Service); err != nil {
		return nil, err
	}
	return s.d.Convs.ServiceCreate(ctx, convapi.ServiceCreateRequest{Service: in.Service, Kind: in.Kind, Name: in.Name, Members: in.Members})
}

func (s *service) checkMembers(in *MembersRequest, withUsers bool) error {
	if err := checkID("service", in.Service); err != nil {
		return err
	}
	if err := checkID("conv", in.Conv); err != nil {
		return err
	}
	if withUsers && len(in.Users) == 0 {
		return badFrame("users", "required: at least one user")
	}
	return nil
}

func (s *service) membersAdd(ctx context.Context, in *MembersRequest) (any, error) {
	if err := s.checkMembers(in, true); err != nil {
		return nil, err
	}
	if err := s.frozen(in.Conv); err != nil {
		return nil, err
	}
	return empty{}, s.d.Convs.ServiceAddMembers(ctx, in.Service, in.Conv, in.Users)
}

func (s *service) membersRemove(ctx context.Context, in *MembersRequest) (any, error) {
	if err := s.checkMembers(in, true); err != nil {
		return nil, err
	}
	if err := s.frozen(in.Conv); err != nil {
		return nil, err
	}
	return empty{}, s.d.Convs.ServiceRemoveMembers(ctx, in.Service, in.Conv, in.Users)
}

func (s *service) membersList(ctx context.Context, in *MembersRequest) (any, error) {
	if err := s.checkMembers(in, false); err != nil {
		return nil, err
	}
	m, err := s.d.Convs.Members(ctx, in.Conv)
	if err != nil {
		return nil, err
	}
	return MembersReply{Members: m}, nil
}

func (s *service) edit(ctx context.Context, in *EditRequest) (any, error) {
	if err := s.checkRef(in.Service, in.Conv, in.Ref, in.Cmid); err != nil {
		return nil, err
	}
	if err := CheckBody(in.Body, s.cfg.MaxBody); err != nil {
		return nil, err
	}
	target, err := s.target(ctx, in.Conv, in.Ref)
	if err != nil {
		return nil, err
	}
	if target.From != in.Service {
		return nil, &convapi.Error{Code: convapi.CodeForbidden, Msg: fmt.Sprintf("ref: %s was sent by %s: a service may edit only its own messages", in.Ref, target.From)}
	}
	return s.d.Log.Append(ctx, msglog.Send{Conv: in.Conv, From: in.Service, Cmid: in.Cmid, Type: natter.TypeEdit, Body: in.Body, Ref: in.Ref})
}

func (s *service) delete(ctx context.Context, in *DeleteRequest) (any, error) {
	if err := s.checkRef(in.Service, in.Conv, in.Ref, in.Cmid); err != nil {
		return nil, err
	}
	if _, err := s.target(ctx, in.Conv, in.Ref); err != nil {
		return nil, err
	}
	return s.d.Log.Append(ctx, msglog.Send{Conv: in.Conv, From: in.Service, Cmid: in.Cmid, Type: natter.TypeDelete, Ref: in.Ref})
}

// frozen answers forbidden when an operator froze conv.
func (s *service) frozen(conv string) error {
	if s.d.Frozen == nil {
		return nil
	}
	if ok, reason := s.d.Frozen(conv); ok {
		msg := "conversation " + conv + " is frozen by an operator: no sends or member changes"
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return &convapi.Error{Code: convapi.CodeForbidden, Msg: msg}
	}
	return nil
}

func (s *service) checkRef(service, conv, ref, cmid string) error {
	if err := s.frozen(conv); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, v string }{{"service", service}, {"conv", conv}, {"ref", ref}, {"cmid", cmid}} {
		if err := checkID(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// refWindow is how many of the newest log entries target searches before
// it asks the archive: an edit usually follows its message closely, before
// the persist worker may have archived it.
const refWindow = 200

// target finds the message ref of conv, which an edit or delete may name:
// among the newest entries of the hot tier, else in the archive.
func (s *service) target(ctx context.Context, conv, ref string) (natter.Message, error) {
	if err := s.exists(ctx, conv); err != nil {
		return natter.Message{}, err
	}
	recent, err := s.d.Log.Before(ctx, conv, 0, refWindow)
	if err != nil && !errors.Is(err, msglog.ErrTrimmed) {
		return natter.Message{}, err
	}
	found := false
	var m natter.Message
	for i := len(recent) - 1; i >= 0; i-- {
		if recent[i].ID == ref {
			m, found = recent[i], true
			break
		}
	}
	if !found {
		m, err = s.d.Convs.Message(ctx, conv, ref)
		if errors.Is(err, convapi.ErrNotFound) {
			return m, &convapi.Error{Code: convapi.CodeNotFound, Msg: "ref: no message " + ref + " in " + conv}
		}
		if err != nil {
			return m, err
		}
	}
	if m.IsEdit() || m.IsDelete() {
		return m, badFrame("ref", ref+" is an "+m.Type+" entry, not a message")
	}
	return m, nil
}
