package cursors

import "sync"

// Option configures a [Bucket] at [Open].
type Option func(*Bucket)

// WithRevisionCache makes [Bucket.RaiseAll] remember, for up to n keys, the
// value and revision it last wrote or read, and raise a key whose
// remembered value is below the wanted one with a compare-and-set against
// the remembered revision, without reading the key first. A remembered
// revision that is no longer the key's last (another writer, a delete)
// fails that compare-and-set, and the key is read and raised as without the
// cache, so a cursor still never moves back. It is for a writer that raises
// the same keys again and again (the persist role raises each sender's
// cursor once per batch): one write per key instead of a read and a write.
// n <= 0 means no cache (the default).
func WithRevisionCache(n int) Option {
	return func(b *Bucket) {
		if n > 0 {
			b.revs = &revCache{max: n, m: make(map[string]entry)}
		}
	}
}

// revCache holds the last value and revision seen of keys; safe for
// concurrent use, and its nil value is an empty cache that keeps nothing.
type revCache struct {
	mu  sync.Mutex
	max int
	m   map[string]entry
}

func (c *revCache) get(key string) (entry, bool) {
	if c == nil {
		return entry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

// put remembers e for key unless a later revision is remembered already.
func (c *revCache) put(key string, e entry) {
	if c == nil || e.rev == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok && old.rev >= e.rev {
		return
	}
	if len(c.m) >= c.max {
		// Forget about a quarter, chosen by map order (random): the keys
		// raised again soon are remembered again at their next write.
		drop := max(c.max/4, 1)
		for k := range c.m {
			if drop == 0 {
				break
			}
			delete(c.m, k)
			drop--
		}
	}
	c.m[key] = e
}

func (c *revCache) forget(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
