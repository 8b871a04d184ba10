package svcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

// Deps are the service's connections to the mesh.
type Deps struct {
	// NC carries the service's subscriptions.
	NC *nats.Conn
	// Log appends sends, edits and deletes and reads the hot tier.
	Log *msglog.Log
	// Convs reaches the conversations service (create, members, archive).
	Convs *convapi.Client
	// Members answers whether a conversation exists.
	Members *convapi.MemberCache
	// Frozen reports whether an operator froze a conversation (admin API)
	// and why: sends, edits, deletes and member changes to it are then
	// refused (forbidden). Nil means none is.
	Frozen func(conv string) (bool, string)
}

type service struct {
	d   Deps
	cfg Config
	log *slog.Logger
}

// Start adds the service API (subjects.ServiceAPI) on d.NC, one endpoint
// per op, all in cfg.QueueGroup so that replicas share the requests. Stop
// the returned service before draining the connection.
//
// Each endpoint handles its requests one at a time per instance (micro's
// model); different ops run concurrently, and more throughput comes from
// more replicas or, for sends, from the ingest subject.
func Start(d Deps, cfg Config) (micro.Service, error) {
	if d.NC == nil || d.Log == nil || d.Convs == nil || d.Members == nil {
		return nil, errors.New("svcapi: start: NC, Log, Convs and Members are required")
	}
	cfg = cfg.withDefaults()
	s := &service{d: d, cfg: cfg, log: cfg.Logger.With("svc", subjects.ServiceAPI)}
	svc, err := micro.AddService(d.NC, micro.Config{
		Name:        subjects.ServiceAPI,
		Version:     cfg.Version,
		Description: "natter service API: send, conversations, members, history, edit and delete for internal services",
		QueueGroup:  cfg.QueueGroup,
		Metadata:    cfg.Metadata,
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			s.log.Error("service subscription error", "subject", e.Subject, "err", e.Description)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("svcapi: add service: %w", err)
	}
	endpoints := []struct {
		op string
		h  micro.Handler
	}{
		{OpSend, handle(s, OpSend, s.send)},
		{OpConvCreate, handle(s, OpConvCreate, s.create)},
		{OpMembersAdd, handle(s, OpMembersAdd, s.membersAdd)},
		{OpMembersRemove, handle(s, OpMembersRemove, s.membersRemove)},
		{OpMembersList, handle(s, OpMembersList, s.membersList)},
		{OpHistory, handle(s, OpHistory, s.history)},
		{OpEdit, handle(s, OpEdit, s.edit)},
		{OpDelete, handle(s, OpDelete, s.delete)},
	}
	for _, ep := range endpoints {
		if err := svc.AddEndpoint(endpointName(ep.op), ep.h, micro.WithEndpointSubject(subjects.APIEndpoint(ep.op))); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("svcapi: add endpoint %s: %w", ep.op, err)
		}
	}
	if err := d.NC.FlushTimeout(cfg.Timeout); err != nil {
		s.log.Warn("endpoints not confirmed by the server yet", "err", err)
	}
	return svc, nil
}

// handle adapts a typed handler to micro: decode, run with the timeout,
// reply with the JSON result or a service error.
func handle[T any](s *service, op string, fn func(context.Context, *T) (any, error)) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		start := time.Now()
		var in T
		if err := convsvc.DecodeRequest(req.Data(), &in); err != nil {
			s.fail(req, op, err, start)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		out, err := fn(ctx, &in)
		if err != nil {
			s.fail(req, op, err, start)
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			s.fail(req, op, err, start)
			return
		}
		if err := req.Respond(b); err != nil {
			s.log.Warn("respond failed", "op", op, "err", err)
		}
	})
}

// fail replies with the service error for err.
func (s *service) fail(req micro.Request, op string, err error, start time.Time) {
	e := errorOf(err)
	if e.Code == convapi.CodeInternal {
		s.log.Error("request failed", "op", op, "err", err, "took", time.Since(start))
	} else if e.Code == convapi.CodeUnavailable {
		s.log.Warn("request unavailable", "op", op, "err", err)
	}
	if rerr := req.Error(e.Code, e.Msg, nil); rerr != nil {
		s.log.Warn("respond failed", "op", op, "err", rerr)
	}
}

// errorOf maps err to the caller's code and message.
func errorOf(err error) *convapi.Error {
	var e *convapi.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, msglog.ErrInvalid):
		return &convapi.Error{Code: convapi.CodeBadFrame, Msg: err.Error()}
	case errors.Is(err, msglog.ErrConflict):
		return &convapi.Error{Code: convapi.CodeUnavailable, Msg: "conversation busy: retry"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return &convapi.Error{Code: convapi.CodeUnavailable, Msg: "temporarily unavailable: retry"}
	}
	return &convapi.Error{Code: convapi.CodeInternal, Msg: "internal error"}
}
