package convsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/internal/lru"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// ListCacheStats counts what the cache of users' conversation lists of one
// service instance did since the instance started. The service reports them
// as the data of its list endpoint in micro's stats ($SRV.STATS).
type ListCacheStats struct {
	// Hits were answered from the cache.
	Hits int64 `json:"hits"`
	// Loads are store lookups (one per miss, shared by the concurrent
	// misses of one user).
	Loads int64 `json:"loads"`
	// Shared are misses that waited for a load another request started.
	Shared int64 `json:"shared"`
	// Invalidations are users' lists dropped by change notices (whether
	// cached or not).
	Invalidations int64 `json:"invalidations"`
	// Flushes are times every list was dropped: after a reconnect, after
	// notices were lost (slow consumer) and on a notice naming no users.
	Flushes int64 `json:"flushes"`
	// Evictions are lists dropped because the cache was full.
	Evictions int64 `json:"evictions"`
	// Entries is the number of users' lists cached now.
	Entries int `json:"entries"`
	// DroppedRequests are requests of any endpoint of the instance that
	// were dropped unanswered: their caller had gone before a worker was
	// free (convapi.WaitHeader).
	DroppedRequests int64 `json:"dropped_requests"`
}

// noticeBodies encodes users into notice bodies (convapi.Notice, Pushed
// set from pushed) of at most budget bytes (a body with one user id always
// fits): one body, with no users when users is empty. A notice with an
// empty body (an older service) names nobody: the list caches then drop
// every list.
func noticeBodies(users []string, pushed bool, budget int) [][]byte {
	if len(users) == 0 {
		b, _ := json.Marshal(convapi.Notice{Users: []string{}, Pushed: pushed})
		return [][]byte{b}
	}
	var out [][]byte
	for len(users) > 0 {
		n, end := len(`{"users":[],"pushed":true}`)+len(users[0])+3, 1
		for end < len(users) && n+len(users[end])+3 <= budget {
			n += len(users[end]) + 3 // ids need no escaping: quotes and a comma
			end++
		}
		b, _ := json.Marshal(convapi.Notice{Users: users[:end], Pushed: pushed})
		out = append(out, b)
		users = users[end:]
	}
	return out
}

// listCache keeps the conversation lists of recently seen users, sorted,
// for the list op and the membership checks of get, read and history: a
// reconnecting client's sync asks for its list, and on the embedded store
// every such lookup scans the users collection.
//
// A user's list is dropped when a change notice names the user (every
// instance publishes one after each member change, see [service.notify]),
// when it is older than the TTL (a safety net for a notice that was never
// published), and when the cache is full (the least recently used goes).
// Every list is dropped after the connection reconnected and when notices
// were dropped (the subscription fell behind): notices may have been
// missed. Concurrent misses for one user share one load, and a load that a
// notice for its user overtakes answers its callers but is not kept.
//
// The notices arrive on a channel subscription, which the connection's
// reader fills in the order the server sent them, and every lookup applies
// the pending notices first: a request that reaches this instance after a
// change notice (the changing instance publishes it before its reply) sees
// the change. Likewise a lookup that sees the connection's reconnect count
// moved drops every list first (nats.go counts the reconnect before it
// reads from the new connection). A ticker applies the notices too, so
// that the channel does not fill while no lookups come.
type listCache struct {
	load    func(ctx context.Context, user string) ([]string, error)
	nc      *nats.Conn
	timeout time.Duration // bounds one load, from when it has its slot
	loads   chan struct{} // the slots of the loads in flight (storeLoads)
	notices chan *nats.Msg
	sub     *nats.Subscription
	stop    chan struct{}
	done    chan struct{}

	// convs holds conversation summaries (natter.Conversation with
	// member_count, and members up to MaxInlineMembers) by conversation id,
	// for the pages of list, and members the member lists of recently
	// paged groups; a notice on the conversation's subject drops its
	// entries.
	convs   convCache[natter.Conversation]
	members convCache[[]string] // sorted member lists, for members and members.list
	c       lru.Cache[[]string] // by user; what follows is guarded by c.c.mu
	// dropped and reconnects are the subscription's dropped count and the
	// connection's reconnect count already flushed for.
	dropped                int
	reconnects             uint64
	invalidations, flushes int64
}

// listNoticeBuffer is how many notices wait for a lookup or the ticker
// before further ones are dropped (and every list with them).
const listNoticeBuffer = 8192

// listApplyEvery is how often the ticker applies waiting notices.
const listApplyEvery = 500 * time.Millisecond

// storeLoads bounds the store loads of one instance's caches in flight
// (lists, summaries, member lists together). A load goes on after its
// callers gave up (their request timed out), so that their retry finds it
// done or in flight; without a bound, a reconnect storm of cold lists (a
// list is UserBuckets store lookups and more) started one load per user at
// once, every load outlasted its timeout on the saturated store, none was
// kept, and the retries started them all again. A load waits for its slot
// outside its timeout, so a queued load is not failed by the queue.
const storeLoads = 8

// newListCache returns a cache that loads with load (each load bounded by
// timeout) and listens for change notices on nc, buffer of them waiting at
// most. Once a flush of nc returns, no notice is missed. Close it when
// done.
func newListCache(nc *nats.Conn, load func(context.Context, string) ([]string, error), ttl time.Duration, max int, timeout time.Duration, buffer int) (*listCache, error) {
	c := &listCache{
		load:    load,
		nc:      nc,
		timeout: timeout,
		loads:   make(chan struct{}, storeLoads),
		notices: make(chan *nats.Msg, buffer),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		c:       lru.New[[]string](ttl, max),
		convs:   convCache[natter.Conversation]{c: lru.New[natter.Conversation](ttl, max)},
		members: convCache[[]string]{c: lru.New[[]string](ttl, memberListsCached)},
	}
	sub, err := nc.ChanSubscribe(subjects.MembersChangedAll, c.notices)
	if err != nil {
		return nil, fmt.Errorf("convsvc: list cache: subscribe: %w", err)
	}
	c.sub = sub
	c.reconnects = nc.Stats().Reconnects
	go c.tick()
	return c, nil
}

// tick applies the waiting notices every listApplyEvery until Close.
func (c *listCache) tick() {
	defer close(c.done)
	t := time.NewTicker(listApplyEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.c.Mu.Lock()
			c.applyLocked()
			c.c.Mu.Unlock()
		}
	}
}

// get returns user's conversation ids, sorted. The slice is shared with the
// cache and other callers: do not modify it.
func (c *listCache) get(ctx context.Context, user string) ([]string, error) {
	c.c.Mu.Lock()
	c.applyLocked()
	convs, call := c.c.LookupLocked(user, func(call *lru.Call[[]string]) { c.fill(user, call) })
	c.c.Mu.Unlock()
	if call == nil {
		return convs, nil
	}
	return call.Wait(ctx, "convsvc: conversations of "+user)
}

// fill loads user's list. It does not use a caller's ctx: one caller giving
// up must not fail the others waiting on the same load. A notice that came
// during the load makes it stale.
func (c *listCache) fill(user string, call *lru.Call[[]string]) {
	var convs []string
	err := c.loading(func(ctx context.Context) (err error) {
		convs, err = c.load(ctx, user)
		return err
	})
	if err == nil {
		convs = slices.Clone(convs)
		slices.Sort(convs)
	}
	c.c.Finish(user, call, convs, err, func() bool { c.applyLocked(); return true })
}

// loading runs load in a load slot (storeLoads), waiting for one first,
// with a ctx bounded by the timeout from when it has the slot.
func (c *listCache) loading(load func(ctx context.Context) error) error {
	select {
	case c.loads <- struct{}{}:
	case <-c.stop:
		return errCacheClosed
	}
	defer func() { <-c.loads }()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return load(ctx)
}

// memberListsCached is how many groups' member lists an instance keeps (a
// list of 100,000 ids is a few MB).
const memberListsCached = 64

// convCache is a cache by conversation that the list cache's notices keep
// (a notice on a conversation's subject drops its entry, a flush all). Its
// Mu is taken after the list cache's, never before.
type convCache[V any] struct {
	c    lru.Cache[V]
	load func(ctx context.Context, conv string) (V, error)
}

// summary returns the summary of conv, from the cache or loaded.
func (c *listCache) summary(ctx context.Context, conv string) (natter.Conversation, error) {
	return lookupConv(ctx, c, &c.convs, conv)
}

// beginSummaries looks the summaries of ids up in the cache: found[i] says
// convs[i] is cached; for the others calls[i] is the load in flight, which
// this caller began when mine[i] (it loads them and must end every one:
// c.convs.c.Finish, after applyNotices), or another did (wait for it).
func (c *listCache) beginSummaries(ids []string) (convs []natter.Conversation, found []bool, calls []*lru.Call[natter.Conversation], mine []bool) {
	convs, found = make([]natter.Conversation, len(ids)), make([]bool, len(ids))
	calls, mine = make([]*lru.Call[natter.Conversation], len(ids)), make([]bool, len(ids))
	c.c.Mu.Lock()
	c.applyLocked()
	c.convs.c.Mu.Lock()
	for i, id := range ids {
		convs[i], found[i], calls[i], mine[i] = c.convs.c.BeginLocked(id)
	}
	c.convs.c.Mu.Unlock()
	c.c.Mu.Unlock()
	return convs, found, calls, mine
}

// applyNotices applies the notices that came meanwhile (before a load
// ends: one for the loaded conversation makes it stale).
func (c *listCache) applyNotices() {
	c.c.Mu.Lock()
	c.applyLocked()
	c.c.Mu.Unlock()
}

// memberList returns the members of conv, sorted, from the cache or
// loaded. The slice is shared: do not modify it.
func (c *listCache) memberList(ctx context.Context, conv string) ([]string, error) {
	return lookupConv(ctx, c, &c.members, conv)
}

func lookupConv[V any](ctx context.Context, c *listCache, cc *convCache[V], conv string) (V, error) {
	c.c.Mu.Lock()
	c.applyLocked()
	cc.c.Mu.Lock()
	v, call := cc.c.LookupLocked(conv, func(call *lru.Call[V]) { fillConv(c, cc, conv, call) })
	cc.c.Mu.Unlock()
	c.c.Mu.Unlock()
	if call == nil {
		return v, nil
	}
	return call.Wait(ctx, "convsvc: conversation "+conv)
}

// fillConv loads conv's entry. The notices received during the load are
// applied before it is kept: one for conv makes it stale.
func fillConv[V any](c *listCache, cc *convCache[V], conv string, call *lru.Call[V]) {
	var v V
	err := c.loading(func(ctx context.Context) (err error) {
		v, err = cc.load(ctx, conv)
		return err
	})
	c.c.Mu.Lock()
	c.applyLocked()
	c.c.Mu.Unlock()
	cc.c.Finish(conv, call, v, err, nil)
}

// dropConvLocked drops what is cached of conv; c.c.Mu is held.
func (c *listCache) dropConvLocked(conv string) {
	c.convs.c.Mu.Lock()
	c.convs.c.DropLocked(conv)
	c.convs.c.Mu.Unlock()
	c.members.c.Mu.Lock()
	c.members.c.DropLocked(conv)
	c.members.c.Mu.Unlock()
}

// invalidateConv drops what is cached of conv.
func (c *listCache) invalidateConv(conv string) {
	c.c.Mu.Lock()
	defer c.c.Mu.Unlock()
	c.dropConvLocked(conv)
}

// invalidate drops the lists of users, and makes loads in flight for them
// not kept (their callers still get the result; later callers load again).
func (c *listCache) invalidate(users []string) {
	c.c.Mu.Lock()
	defer c.c.Mu.Unlock()
	c.invalidateLocked(users)
}

func (c *listCache) invalidateLocked(users []string) {
	for _, u := range users {
		c.invalidations++
		c.c.DropLocked(u)
	}
}

// flushLocked drops every list and makes every load in flight not kept.
func (c *listCache) flushLocked() {
	c.c.FlushLocked()
	c.convs.c.Mu.Lock()
	c.convs.c.FlushLocked()
	c.convs.c.Mu.Unlock()
	c.members.c.Mu.Lock()
	c.members.c.FlushLocked()
	c.members.c.Mu.Unlock()
	c.flushes++
}

// applyLocked flushes if the connection reconnected since the last look,
// applies the notices waiting in the channel, then flushes if the
// subscription dropped any.
func (c *listCache) applyLocked() {
	if r := c.nc.Stats().Reconnects; r != c.reconnects {
		c.reconnects = r
		c.flushLocked()
	}
	for {
		select {
		case msg := <-c.notices:
			if conv := convapi.ChangedConv(msg.Subject); conv != "" {
				c.dropConvLocked(conv)
			}
			var n convapi.Notice
			if len(msg.Data) == 0 || json.Unmarshal(msg.Data, &n) != nil || n.Users == nil {
				c.flushLocked()
				continue
			}
			c.invalidateLocked(n.Users)
		default:
			if d, err := c.sub.Dropped(); err == nil && d > c.dropped {
				c.dropped = d
				c.flushLocked()
			}
			return
		}
	}
}

// Stats returns the counters.
func (c *listCache) Stats() ListCacheStats {
	c.c.Mu.Lock()
	defer c.c.Mu.Unlock()
	return ListCacheStats{Hits: c.c.Hits, Loads: c.c.Loads, Shared: c.c.Shared, Invalidations: c.invalidations,
		Flushes: c.flushes, Evictions: c.c.Evictions, Entries: c.c.Len()}
}

// Close unsubscribes and stops the ticker; lookups then load every time.
// Close is safe to call twice.
func (c *listCache) Close() error {
	c.c.Mu.Lock()
	open := c.c.CloseLocked()
	c.convs.c.Mu.Lock()
	c.convs.c.CloseLocked()
	c.convs.c.Mu.Unlock()
	c.members.c.Mu.Lock()
	c.members.c.CloseLocked()
	c.members.c.Mu.Unlock()
	c.c.Mu.Unlock()
	if !open {
		return nil
	}
	close(c.stop)
	<-c.done
	if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("convsvc: list cache: unsubscribe: %w", err)
	}
	return nil
}
