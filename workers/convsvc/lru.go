package convsvc

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// lru is what the member cache and the list cache share: values by key,
// each kept until it expires, at most max of them (the least recently used
// goes first), and the loads in flight, one per key, shared by the
// concurrent misses of that key. What drops entries (change notices,
// reconnects) is each cache's own. Methods named *Locked expect mu held.
type lru[V any] struct {
	ttl time.Duration
	max int

	mu     sync.Mutex
	byKey  map[string]*list.Element // of *lruEntry[V]
	order  *list.List               // front = most recently used
	calls  map[string]*lruCall[V]
	closed bool // Close ran: loads are no longer kept
	// hits, loads, shared and evictions count what their names say (see
	// CacheStats).
	hits, loads, shared, evictions int64
}

type lruEntry[V any] struct {
	key     string
	val     V
	expires time.Time
}

// lruCall is one load in flight.
type lruCall[V any] struct {
	done  chan struct{}
	val   V
	err   error
	stale bool // dropped while loading: answer the callers, do not keep it
}

func newLRU[V any](ttl time.Duration, max int) lru[V] {
	return lru[V]{ttl: ttl, max: max, byKey: make(map[string]*list.Element), order: list.New(), calls: make(map[string]*lruCall[V])}
}

// lookupLocked returns key's value if it is cached and fresh. Otherwise it
// returns the load in flight for key, and starts one (load in a goroutine
// of its own, which must call finish) if there is none.
func (c *lru[V]) lookupLocked(key string, load func(*lruCall[V])) (V, *lruCall[V]) {
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*lruEntry[V])
		if time.Now().Before(e.expires) {
			c.order.MoveToFront(el)
			c.hits++
			return e.val, nil
		}
		c.order.Remove(el)
		delete(c.byKey, key)
	}
	call, ok := c.calls[key]
	if ok {
		c.shared++
	} else {
		call = &lruCall[V]{done: make(chan struct{})}
		c.calls[key] = call
		c.loads++
		go load(call)
	}
	var zero V
	return zero, call
}

// finish ends call, a load of key, with val or err: the value is kept
// unless the load failed or was dropped meanwhile, and the callers waiting
// for it get the result either way. keep, if not nil, runs under mu before
// the value is kept, and can veto it.
func (c *lru[V]) finish(key string, call *lruCall[V], val V, err error, keep func() bool) {
	c.mu.Lock()
	// keep runs while call is still the key's load, so that what it drops
	// (dropLocked) marks call stale.
	kept := keep == nil || keep()
	if c.calls[key] == call {
		delete(c.calls, key)
	}
	if err == nil && kept && !call.stale && !c.closed {
		if el, ok := c.byKey[key]; ok {
			c.order.Remove(el)
		}
		c.byKey[key] = c.order.PushFront(&lruEntry[V]{key: key, val: val, expires: time.Now().Add(c.ttl)})
		for c.order.Len() > c.max {
			old := c.order.Remove(c.order.Back()).(*lruEntry[V])
			delete(c.byKey, old.key)
			c.evictions++
		}
	}
	call.val, call.err = val, err
	c.mu.Unlock()
	close(call.done)
}

// wait waits for call, or for ctx (what names the lookup in that error).
func (call *lruCall[V]) wait(ctx context.Context, what string) (V, error) {
	select {
	case <-call.done:
		return call.val, call.err
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("convsvc: %s: %w", what, ctx.Err())
	}
}

// dropLocked drops key, and makes a load in flight for it not kept (its
// callers still get its result; later callers start a new load).
func (c *lru[V]) dropLocked(key string) {
	if el, ok := c.byKey[key]; ok {
		c.order.Remove(el)
		delete(c.byKey, key)
	}
	if call, ok := c.calls[key]; ok {
		call.stale = true
		delete(c.calls, key)
	}
}

// flushLocked drops every key and makes every load in flight not kept.
func (c *lru[V]) flushLocked() {
	for _, call := range c.calls {
		call.stale = true
	}
	clear(c.calls)
	clear(c.byKey)
	c.order.Init()
}

// closeLocked empties the cache for good: later loads are not kept. It
// reports whether it was open.
func (c *lru[V]) closeLocked() bool {
	if c.closed {
		return false
	}
	c.closed = true
	clear(c.byKey)
	c.order.Init()
	return true
}
