package lru

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// Cache is what the member cache and the list cache share: values by key,
// each kept until it expires, at most max of them (the least recently used
// goes first), and the loads in flight, one per key, shared by the
// concurrent misses of that key. What drops entries (change notices,
// reconnects) is each cache's own. Methods named *Locked expect Mu held.
type Cache[V any] struct {
	ttl time.Duration
	max int

	Mu     sync.Mutex
	byKey  map[string]*list.Element // of *entry[V]
	order  *list.List               // front = most recently used
	calls  map[string]*Call[V]
	closed bool // Close ran: loads are no longer kept
	// Hits, Loads, Shared and Evictions count what their names say
	// (guarded by Mu).
	Hits, Loads, Shared, Evictions int64
}

type entry[V any] struct {
	key     string
	val     V
	expires time.Time
}

// Call is one load in flight.
type Call[V any] struct {
	done  chan struct{}
	val   V
	err   error
	stale bool // dropped while loading: answer the callers, do not keep it
}

// New returns an empty cache whose entries live ttl, at most max of them.
func New[V any](ttl time.Duration, max int) Cache[V] {
	return Cache[V]{ttl: ttl, max: max, byKey: make(map[string]*list.Element), order: list.New(), calls: make(map[string]*Call[V])}
}

// LookupLocked returns key's value if it is cached and fresh. Otherwise it
// returns the load in flight for key, and starts one (load in a goroutine
// of its own, which must call Finish) if there is none.
func (c *Cache[V]) LookupLocked(key string, load func(*Call[V])) (V, *Call[V]) {
	v, hit, call, mine := c.BeginLocked(key)
	if hit {
		return v, nil
	}
	if mine {
		go load(call)
	}
	return v, call
}

// BeginLocked is LookupLocked for a caller that loads many keys at once:
// key's value if it is cached and fresh (hit), else the load in flight for
// key, which the caller started (mine: it loads the value and must call
// Finish) or another did (wait for it).
func (c *Cache[V]) BeginLocked(key string) (val V, hit bool, call *Call[V], mine bool) {
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*entry[V])
		if time.Now().Before(e.expires) {
			c.order.MoveToFront(el)
			c.Hits++
			return e.val, true, nil, false
		}
		c.order.Remove(el)
		delete(c.byKey, key)
	}
	call, ok := c.calls[key]
	if ok {
		c.Shared++
		return val, false, call, false
	}
	call = &Call[V]{done: make(chan struct{})}
	c.calls[key] = call
	c.Loads++
	return val, false, call, true
}

// Finish ends call, a load of key, with val or err: the value is kept
// unless the load failed or was dropped meanwhile, and the callers waiting
// for it get the result either way. keep, if not nil, runs under mu before
// the value is kept, and can veto it.
func (c *Cache[V]) Finish(key string, call *Call[V], val V, err error, keep func() bool) {
	c.Mu.Lock()
	// keep runs while call is still the key's load, so that what it drops
	// (DropLocked) marks call stale.
	kept := keep == nil || keep()
	if c.calls[key] == call {
		delete(c.calls, key)
	}
	if err == nil && kept && !call.stale && !c.closed {
		if el, ok := c.byKey[key]; ok {
			c.order.Remove(el)
		}
		c.byKey[key] = c.order.PushFront(&entry[V]{key: key, val: val, expires: time.Now().Add(c.ttl)})
		for c.order.Len() > c.max {
			old := c.order.Remove(c.order.Back()).(*entry[V])
			delete(c.byKey, old.key)
			c.Evictions++
		}
	}
	call.val, call.err = val, err
	c.Mu.Unlock()
	close(call.done)
}

// Wait waits for call, or for ctx (what names the lookup in that error).
func (call *Call[V]) Wait(ctx context.Context, what string) (V, error) {
	select {
	case <-call.done:
		return call.val, call.err
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// DropLocked drops key, and makes a load in flight for it not kept (its
// callers still get its result; later callers start a new load).
func (c *Cache[V]) DropLocked(key string) {
	if el, ok := c.byKey[key]; ok {
		c.order.Remove(el)
		delete(c.byKey, key)
	}
	if call, ok := c.calls[key]; ok {
		call.stale = true
		delete(c.calls, key)
	}
}

// FlushLocked drops every key and makes every load in flight not kept.
func (c *Cache[V]) FlushLocked() {
	for _, call := range c.calls {
		call.stale = true
	}
	clear(c.calls)
	clear(c.byKey)
	c.order.Init()
}

// CloseLocked empties the cache for good: later loads are not kept. It
// reports whether it was open.
func (c *Cache[V]) CloseLocked() bool {
	if c.closed {
		return false
	}
	c.closed = true
	clear(c.byKey)
	c.order.Init()
	return true
}

// Len is the number of entries kept now. Call it with Mu held.
func (c *Cache[V]) Len() int { return len(c.byKey) }
