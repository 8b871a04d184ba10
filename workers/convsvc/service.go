package convsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/x/mongo/driver/topology"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// service holds the handlers of one instance.
type service struct {
	nc  *nats.Conn
	st  *store.Store
	cfg Config
	log *slog.Logger

	sem      chan struct{}                   // the workers: bounds the requests in flight
	inflight sync.WaitGroup                  // requests being worked on or waiting, waited for by Stop
	queued   atomic.Int64                    // requests waiting for a worker
	dropped  atomic.Int64                    // requests dropped unanswered: their caller had gone
	hold     atomic.Pointer[func(op string)] // tests: runs first in every worker
	// MongoDB applies a single-document update atomically, but FerretDB v1
	// reads, changes and rewrites the document, so two concurrent updates
	// of one document can lose one of them. Membership changes are safe
	// across replicas by the store's lease locks (store/locks.go); read
	// cursors run per conversation stripe under writes within an instance.
	writes [64]sync.Mutex
	seed   maphash.Seed
	// lists caches users' conversation lists (nil: cfg.ListCacheSize < 0).
	lists *listCache
	// reads publishes read pushes (receipts.go).
	reads *readPusher
	// docOutboxesSwept says the sweeper read the outboxes that earlier
	// versions left in conversation documents (outbox.go); only the
	// sweeper's goroutine uses it.
	docOutboxesSwept bool
}

// Start adds the conversations micro service (subjects.ServiceConversations)
// on nc, one endpoint per op, all in cfg.QueueGroup so that replicas share
// the requests. Stop the returned service before draining nc.
//
// Requests are worked on concurrently, up to cfg.Concurrency per instance
// (a sync asks for the user's conversation list on every reconnect, so one
// request at a time per endpoint would queue a reconnecting crowd); micro's
// per-endpoint stats then count requests but not their errors or
// processing time. More throughput comes from more replicas.
//
// Each instance caches users' conversation lists (cfg.ListCacheSize, see
// the package doc); Stop closes the cache, as does the service stopping
// when nc closes.
//
// With cfg.Events set, a sweeper republishes the events left in
// conversation outboxes every cfg.OutboxSweep; the returned service's Stop
// stops it (and waits for it) first, as does the service stopping when nc
// closes.
func Start(nc *nats.Conn, st *store.Store, cfg Config) (micro.Service, error) {
	if nc == nil || st == nil {
		return nil, errors.New("convsvc: start: nil connection or store")
	}
	cfg = cfg.withDefaults()
	s := &service{nc: nc, st: st, cfg: cfg, log: cfg.Logger.With("svc", subjects.ServiceConversations),
		sem: make(chan struct{}, cfg.Concurrency), seed: maphash.MakeSeed()}
	s.reads = newReadPusher(cfg.ReadPushInterval, s.publishRead)
	if cfg.ListCacheSize > 0 {
		lists, err := newListCache(nc, st.UserConversations, cfg.ListCacheTTL, cfg.ListCacheSize, cfg.StoreTimeout, listNoticeBuffer)
		if err != nil {
			return nil, err
		}
		lists.convs.load = func(ctx context.Context, conv string) (natter.Conversation, error) {
			return st.ConversationSummary(ctx, conv, convapi.MaxInlineMembers)
		}
		lists.members.load = s.storeMembers
		s.lists = lists
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	svc, err := micro.AddService(nc, micro.Config{
		DoneHandler: func(micro.Service) { stopSweep(); s.closeLists() },
		StatsHandler: func(ep *micro.Endpoint) any {
			if ep.Name != convapi.EndpointName(convapi.OpList) || s.lists == nil {
				return nil
			}
			st := s.lists.Stats()
			st.DroppedRequests = s.dropped.Load()
			return st
		},
		Name:        subjects.ServiceConversations,
		Version:     cfg.Version,
		Description: "natter conversations, members, read cursors and archived history",
		QueueGroup:  cfg.QueueGroup,
		Metadata:    cfg.Metadata,
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			s.log.Error("service subscription error", "subject", e.Subject, "err", e.Description)
		},
	})
	if err != nil {
		stopSweep()
		s.closeLists()
		return nil, fmt.Errorf("convsvc: add service: %w", err)
	}
	endpoints := []struct {
		op string
		h  micro.Handler
	}{
		{convapi.OpCreate, handle(s, convapi.OpCreate, s.create)},
		{convapi.OpGet, handle(s, convapi.OpGet, s.get)},
		{convapi.OpList, handle(s, convapi.OpList, s.list)},
		{convapi.OpMembersAdd, handle(s, convapi.OpMembersAdd, s.membersAdd)},
		{convapi.OpMembersRemove, handle(s, convapi.OpMembersRemove, s.membersRemove)},
		{convapi.OpMembersList, handle(s, convapi.OpMembersList, s.membersList)},
		{convapi.OpRename, handle(s, convapi.OpRename, s.rename)},
		{convapi.OpModerate, handle(s, convapi.OpModerate, s.moderate)},
		{convapi.OpBlock, handle(s, convapi.OpBlock, s.block)},
		{convapi.OpUnblock, handle(s, convapi.OpUnblock, s.unblock)},
		{convapi.OpBlocks, handle(s, convapi.OpBlocks, s.blocksList)},
		{convapi.OpMembers, handle(s, convapi.OpMembers, s.members)},
		{convapi.OpRead, handle(s, convapi.OpRead, serialised(s, s.read, func(in *convapi.ReadRequest) string { return in.Conv }))},
		{convapi.OpHistory, handle(s, convapi.OpHistory, s.history)},
		{convapi.OpReceipts, handle(s, convapi.OpReceipts, s.receipts)},
		{convapi.OpServiceCreate, handle(s, convapi.OpServiceCreate, s.serviceCreate)},
		{convapi.OpServiceMembersAdd, handle(s, convapi.OpServiceMembersAdd, s.serviceMembersAdd)},
		{convapi.OpServiceMembersRemove, handle(s, convapi.OpServiceMembersRemove, s.serviceMembersRemove)},
		{convapi.OpMessages, handle(s, convapi.OpMessages, s.messages)},
		{convapi.OpMessage, handle(s, convapi.OpMessage, s.message)},
	}
	for _, ep := range endpoints {
		err := svc.AddEndpoint(convapi.EndpointName(ep.op), ep.h, micro.WithEndpointSubject(subjects.ConvEndpoint(ep.op)))
		if err != nil {
			stopSweep()
			_ = svc.Stop()
			s.closeLists()
			return nil, fmt.Errorf("convsvc: add endpoint %s: %w", ep.op, err)
		}
	}
	// Once Start returns, requests from other connections find the
	// endpoints, and the list cache gets every change notice. A connection that is down sends its subscriptions when it
	// reconnects: the service is not failed for it.
	if err := nc.FlushTimeout(cfg.StoreTimeout); err != nil {
		s.log.Warn("endpoints not confirmed by the server yet", "err", err)
	}
	if cfg.Events == nil {
		stopSweep()
		return &running{Service: svc, s: s, stop: func() {}}, nil
	}
	go s.sweep(sweepCtx, swept)
	return &running{Service: svc, s: s, stop: sync.OnceFunc(func() { stopSweep(); <-swept })}, nil
}

// running is a started service whose Stop also stops its outbox sweeper
// and waits for the requests in flight.
type running struct {
	micro.Service
	s    *service
	stop func()
}

// Stop stops the sweeper, waiting for it, then the micro service (no new
// requests), then waits up to the store timeout for requests in flight,
// then closes the list cache.
func (r *running) Stop() error {
	r.stop()
	err := r.Service.Stop()
	done := make(chan struct{})
	go func() { r.s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.s.cfg.StoreTimeout + time.Second):
		r.s.log.Warn("stopped with requests still in flight")
	}
	r.s.reads.stop()
	r.s.closeLists()
	return err
}

// closeLists closes the list cache (a closed one loads every lookup).
func (s *service) closeLists() {
	if s.lists == nil {
		return
	}
	if err := s.lists.Close(); err != nil {
		s.log.Warn("list cache not closed cleanly", "err", err)
	}
}

// handle adapts a typed handler to micro: decode, run with the store
// timeout, reply with the JSON result or a service error.
//
// A request runs at once when one of the cfg.Concurrency workers is free;
// otherwise it waits for one, at most as long as its caller waits
// (convapi.WaitHeader, from its arrival): a request whose caller has gone
// is dropped unanswered, never worked on, so that in a reconnect storm the
// workers answer the requests still waited for instead of the backlog of
// those that timed out (and whose retries are queued behind them). At most
// cfg.MaxWaiting wait; more are answered unavailable at once.
func handle[T any](s *service, op string, fn func(context.Context, *T) (any, error)) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		start := time.Now()
		var in T
		if err := DecodeRequest(req.Data(), &in); err != nil {
			s.fail(req, op, err, start)
			return
		}
		deadline := start.Add(callerWait(req.Headers()))
		// The work runs in its own goroutine, so that a slow store call
		// does not hold up the endpoint's other requests. It answers by
		// publishing to the reply subject itself: micro's Request must not
		// be used once the handler has returned.
		reply := req.Reply()
		select {
		case s.sem <- struct{}{}:
			s.inflight.Add(1)
			go work(s, op, reply, &in, fn, start, deadline)
			return
		default:
		}
		if s.queued.Add(1) > int64(s.cfg.MaxWaiting) {
			s.queued.Add(-1)
			s.fail(req, op, &convapi.Error{Code: convapi.CodeUnavailable,
				Msg: fmt.Sprintf("conversations service busy: %d requests waiting, retry later", s.cfg.MaxWaiting)}, start)
			return
		}
		s.inflight.Add(1)
		go func() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			select {
			case s.sem <- struct{}{}:
				s.queued.Add(-1)
			case <-t.C:
				s.queued.Add(-1)
				s.inflight.Done()
				s.dropped.Add(1)
				return
			}
			work(s, op, reply, &in, fn, start, deadline)
		}()
	})
}

// callerWait is how long the caller of a request waits for its reply:
// convapi.WaitHeader, or convapi.DefaultWait without it.
func callerWait(h micro.Headers) time.Duration {
	if v := h.Get(convapi.WaitHeader); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return convapi.DefaultWait
}

// work runs fn on in, holding a worker (s.sem, released here), within the
// store timeout and the caller's deadline, and publishes the reply.
func work[T any](s *service, op, reply string, in *T, fn func(context.Context, *T) (any, error), start, deadline time.Time) {
	defer func() { <-s.sem; s.inflight.Done() }()
	if h := s.hold.Load(); h != nil {
		(*h)(op)
	}
	if d := time.Now().Add(s.cfg.StoreTimeout); d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	out, err := fn(ctx, in)
	var b []byte
	if err == nil {
		b, err = json.Marshal(out)
	}
	if err == nil && int64(len(b)) > s.nc.MaxPayload() {
		err = fmt.Errorf("reply of %d bytes exceeds the max payload", len(b))
	}
	msg := &nats.Msg{Subject: reply, Data: b}
	if err != nil {
		e := s.errorOf(op, err, start)
		msg = &nats.Msg{Subject: reply, Header: nats.Header{
			micro.ErrorHeader: []string{e.Msg}, micro.ErrorCodeHeader: []string{e.Code}}}
	}
	if reply == "" {
		return
	}
	if perr := s.nc.PublishMsg(msg); perr != nil {
		s.log.Warn("respond failed", "op", op, "err", perr)
	}
}

// serialised runs fn under the write lock of the request's conversation
// (see service.writes).
func serialised[T any](s *service, fn func(context.Context, *T) (any, error), conv func(*T) string) func(context.Context, *T) (any, error) {
	return func(ctx context.Context, in *T) (any, error) {
		mu := &s.writes[maphash.String(s.seed, conv(in))%uint64(len(s.writes))]
		mu.Lock()
		defer mu.Unlock()
		return fn(ctx, in)
	}
}

// DecodeRequest decodes a service request body into v; a bad body is a
// bad_frame [*Error] naming the field. The service API shares it.
func DecodeRequest(data []byte, v any) error {
	if len(data) == 0 {
		return badFrame("request", "empty: want a JSON object")
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badFrame(te.Field, fmt.Sprintf("want a JSON %s, got %s", te.Type, te.Value))
	}
	return badFrame("request", "malformed JSON: "+err.Error())
}

// fail replies with the service error for err, logging what callers do not
// see.
func (s *service) fail(req micro.Request, op string, err error, start time.Time) {
	e := s.errorOf(op, err, start)
	if rerr := req.Error(e.Code, e.Msg, nil); rerr != nil {
		s.log.Warn("respond failed", "op", op, "err", rerr)
	}
}

// errorOf maps err to the caller's service error, logging what callers do
// not see.
func (s *service) errorOf(op string, err error, start time.Time) *convapi.Error {
	var e *convapi.Error
	switch {
	case errors.As(err, &e):
	case unavailable(err):
		s.log.Warn("store unavailable", "op", op, "err", err)
		e = &convapi.Error{Code: convapi.CodeUnavailable, Msg: "store unavailable, retry later"}
	default:
		s.log.Error("request failed", "op", op, "err", err, "took", time.Since(start))
		e = &convapi.Error{Code: convapi.CodeInternal, Msg: "internal error"}
	}
	return e
}

// unavailable reports whether err means the store could not be reached in
// time (retryable) rather than that it refused the operation.
func unavailable(err error) bool {
	return mongo.IsTimeout(err) || mongo.IsNetworkError(err) ||
		errors.As(err, &topology.ServerSelectionError{}) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, store.ErrLockLost)
}

// maxNoticeBody bounds the body of one membership-change notice; a change
// of more users publishes several.
const maxNoticeBody = 64 << 10

// notify drops the lists of users from this instance's list cache and
// publishes the membership-change notices of conv naming users, whose
// conversation lists the change wrote (convapi.Notice); pushed says the
// change succeeded, so this service pushes its conv frames itself
// (push.go) and the edges need not. It runs after every write attempt to a
// member set, failed ones included (a failed multi-document write may have
// changed part of it), and after a rename (no users: the conversation's
// summary), before the reply: a request that follows the reply finds the
// lists dropped here, and on another instance behind the notice.
func (s *service) notify(conv string, users []string, pushed bool) {
	if s.lists != nil {
		s.lists.invalidate(users)
		s.lists.invalidateConv(conv)
	}
	budget := min(maxNoticeBody, int(s.nc.MaxPayload())-1024)
	for _, body := range noticeBodies(users, pushed, budget) {
		if err := s.nc.Publish(subjects.MembersChanged(conv), body); err != nil {
			s.log.Warn("members changed notice not published", "conv", conv, "err", err)
			return
		}
	}
}

// userConvs returns the ids of user's conversations, sorted, from the list
// cache when there is one. The slice may be shared: do not modify it.
func (s *service) userConvs(ctx context.Context, user string) ([]string, error) {
	if s.lists != nil {
		return s.lists.get(ctx, user)
	}
	ids, err := s.st.UserConversations(ctx, user)
	if err != nil {
		return nil, err
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids, nil
}

// summary returns conv's summary for list: from the list cache's
// summaries when there is one.
func (s *service) summary(ctx context.Context, conv string) (natter.Conversation, error) {
	if s.lists != nil {
		return s.lists.summary(ctx, conv)
	}
	return s.st.ConversationSummary(ctx, conv, convapi.MaxInlineMembers)
}

// storeMembers reads the members of conv from the store, sorted; not_found
// for an unknown conversation.
func (s *service) storeMembers(ctx context.Context, conv string) ([]string, error) {
	c, err := s.st.GetConversation(ctx, conv, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(conv)
	}
	if err != nil {
		return nil, err
	}
	return slices.Sorted(slices.Values(c.Members)), nil
}

// requireMember checks user is in conv: one _id lookup of the membership
// document, whatever the size of the group or of the user's list.
func (s *service) requireMember(ctx context.Context, user, conv string) error {
	ok, err := s.st.IsMember(ctx, conv, user)
	if err != nil {
		return err
	}
	if !ok {
		return errNotMember
	}
	return nil
}

// userList validates ids (named field[i] in errors) and returns them
// deduplicated in order, after first when first is not "".
func userList(field string, ids []string, first string) ([]string, error) {
	out := make([]string, 0, len(ids)+1)
	seen := make(map[string]struct{}, len(ids)+1)
	if first != "" {
		out = append(out, first)
		seen[first] = struct{}{}
	}
	for i, id := range ids {
		if err := subjects.ValidID(id); err != nil {
			return nil, badID(fmt.Sprintf("%s[%d]", field, i), err)
		}
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out, nil
}

// validIDs checks each named id in order: name, value, name, value ...
func validIDs(kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := subjects.ValidID(kv[i+1]); err != nil {
			return badID(kv[i], err)
		}
	}
	return nil
}
