package convapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/lru"
	"github.com/natter-im/natter/jetstream/subjects"
)

// MemberCache keeps the member sets of recently used conversations, for the
// edge (may this user send here?) and the fan-out worker (who gets this
// message?).
//
// An entry is dropped when a notice arrives on subjects.MembersChanged (the
// service publishes one after every member change), when it is older than
// the TTL (a safety net for lost notices), and when the cache is full (the
// least recently used goes). After the connection reconnects, every entry is
// dropped: notices may have been missed while it was down. Concurrent misses
// for one conversation share one load.
//
// An unknown conversation is cached too (as such, until a create notice or
// the TTL drops it): [MemberCache.IsMember] answers false with no error, so
// the edge answers not_member without telling whether it exists.
type MemberCache struct {
	client *Client
	nc     *nats.Conn
	sub    *nats.Subscription
	status chan nats.Status

	c             lru.Cache[*memberEntry] // by conversation
	invalidations int64                   // guarded by c.mu
}

// CacheStats counts what a [MemberCache] did since it was made.
type CacheStats struct {
	// Hits were answered from the cache.
	Hits int64
	// Loads are requests to the service (one per miss, shared by the
	// concurrent misses of one conversation).
	Loads int64
	// Shared are misses that waited for a load another caller started.
	Shared int64
	// Invalidations are change notices received (and reconnect flushes).
	Invalidations int64
	// Evictions are entries dropped because the cache was full.
	Evictions int64
	// Entries is the number of conversations cached now.
	Entries int
}

type memberEntry struct {
	members []string
	set     map[string]struct{}
	exists  bool
	mod     Moderation // a group's (zero for a direct conversation)
}

// NewMemberCache returns a cache that loads through c and listens for
// change notices on nc. Entries live ttl (zero means 30s); at most max
// conversations are kept (zero means 10,000). ctx bounds the subscription
// round trip: once NewMemberCache returns, no change notice is missed.
// Close it when done.
func NewMemberCache(ctx context.Context, nc *nats.Conn, c *Client, ttl time.Duration, max int) (*MemberCache, error) {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if max <= 0 {
		max = 10_000
	}
	m := &MemberCache{client: c, nc: nc, c: lru.New[*memberEntry](ttl, max)}
	sub, err := nc.Subscribe(subjects.MembersChangedAll, func(msg *nats.Msg) {
		if conv := ChangedConv(msg.Subject); conv != "" {
			m.invalidate(conv)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("convapi: member cache: subscribe: %w", err)
	}
	if _, ok := ctx.Deadline(); ok {
		err = nc.FlushWithContext(ctx)
	} else {
		err = nc.FlushTimeout(c.timeout)
	}
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("convapi: member cache: flush subscription: %w", err)
	}
	m.sub = sub
	m.status = nc.StatusChanged(nats.CONNECTED)
	go m.watch(m.status)
	return m, nil
}

// watch drops everything after a reconnect (notices sent while the
// connection was down are lost). It ends when Close removes the listener.
func (m *MemberCache) watch(status chan nats.Status) {
	for range status {
		m.c.Mu.Lock()
		m.c.FlushLocked()
		m.invalidations++
		m.c.Mu.Unlock()
	}
}

// Members returns the members of conv, sorted, or [ErrNotFound] for an
// unknown conversation. The slice is shared with the cache and other
// callers: do not modify it.
func (m *MemberCache) Members(ctx context.Context, conv string) ([]string, error) {
	e, err := m.get(ctx, conv)
	if err != nil {
		return nil, err
	}
	if !e.exists {
		return nil, &Error{Code: CodeNotFound, Msg: "no conversation " + conv}
	}
	return e.members, nil
}

// IsMember reports whether user is a member of conv: false, with no error,
// when conv does not exist.
func (m *MemberCache) IsMember(ctx context.Context, conv, user string) (bool, error) {
	e, err := m.get(ctx, conv)
	if err != nil {
		return false, err
	}
	_, ok := e.set[user]
	return ok, nil
}

// MemberSet is the members of one conversation as a [MemberCache] holds
// them; it does not change (a change makes a new one).
type MemberSet struct{ e *memberEntry }

// Len returns the number of members.
func (s MemberSet) Len() int { return len(s.e.members) }

// Has reports whether user is a member.
func (s MemberSet) Has(user string) bool { _, ok := s.e.set[user]; return ok }

// All returns the members, sorted. The slice is shared: do not modify it.
func (s MemberSet) All() []string { return s.e.members }

// Mod returns the group's moderation as loaded with the members (zero for
// a direct conversation). Shared: do not modify it.
func (s MemberSet) Mod() *Moderation { return &s.e.mod }

// Set returns the members of conv as a set (empty for an unknown
// conversation), from the cache or loaded as [MemberCache.Members] does.
func (m *MemberCache) Set(ctx context.Context, conv string) (MemberSet, error) {
	e, err := m.get(ctx, conv)
	if err != nil {
		return MemberSet{}, err
	}
	return MemberSet{e}, nil
}

// Stats returns the counters.
func (m *MemberCache) Stats() CacheStats {
	m.c.Mu.Lock()
	defer m.c.Mu.Unlock()
	return CacheStats{Hits: m.c.Hits, Loads: m.c.Loads, Shared: m.c.Shared, Invalidations: m.invalidations,
		Evictions: m.c.Evictions, Entries: m.c.Len()}
}

// Close unsubscribes from the change notices. The cache then loads every
// lookup from the service. Close is safe to call twice.
func (m *MemberCache) Close() error {
	m.c.Mu.Lock()
	open := m.c.CloseLocked()
	m.c.Mu.Unlock()
	if !open {
		return nil
	}
	m.nc.RemoveStatusListener(m.status)
	if err := m.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("convapi: member cache: unsubscribe: %w", err)
	}
	return nil
}

func (m *MemberCache) get(ctx context.Context, conv string) (*memberEntry, error) {
	m.c.Mu.Lock()
	// BeginLocked, not LookupLocked: its load closure would be allocated on
	// every call, hits included (one per send on the edge).
	e, hit, call, mine := m.c.BeginLocked(conv)
	m.c.Mu.Unlock()
	if hit {
		return e, nil
	}
	if mine {
		go m.load(conv, call)
	}
	return call.Wait(ctx, "convapi: members of "+conv)
}

// load asks the service for conv's members. It does not use a caller's ctx:
// one caller giving up must not fail the others waiting on the same load.
// The client's timeout bounds each request.
func (m *MemberCache) load(conv string, call *lru.Call[*memberEntry]) {
	members, mod, err := m.client.MembersMod(context.Background(), conv)
	mod.index()
	e := &memberEntry{exists: true, members: members, mod: mod}
	if errors.Is(err, ErrNotFound) {
		e, err = &memberEntry{members: []string{}}, nil
	}
	if err == nil {
		e.set = make(map[string]struct{}, len(e.members))
		for _, u := range e.members {
			e.set[u] = struct{}{}
		}
	}
	m.c.Finish(conv, call, e, err, nil)
}

// Invalidate drops conv as a change notice does. A caller that made a
// change through the service calls it once the reply has come: the
// notice travels on another connection than the reply and may come later,
// and a request that follows the reply must see the change.
func (m *MemberCache) Invalidate(conv string) { m.invalidate(conv) }

// invalidate drops conv, and makes a load in flight for it not kept (its
// callers still get its result; later callers start a new load).
func (m *MemberCache) invalidate(conv string) {
	m.c.Mu.Lock()
	defer m.c.Mu.Unlock()
	m.invalidations++
	m.c.DropLocked(conv)
}
