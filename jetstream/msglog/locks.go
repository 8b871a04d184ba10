package msglog

import (
	"context"
	"hash/maphash"
	"sync"
)

const (
	lockShards = 64
	// lockFree is how many unused entries a shard keeps for reuse: an entry
	// (and its channel) per append was most of the lock's cost in bytes.
	lockFree = 4
)

// convLocks serialises appends per conversation inside one process. An entry
// lives only while someone holds or waits for it, so the table does not grow
// with the number of conversations ever seen; a few unused entries per
// shard are kept for the next conversations.
type convLocks struct {
	seed   maphash.Seed
	shards [lockShards]lockShard
}

type lockShard struct {
	mu   sync.Mutex
	m    map[string]*convLock
	free []*convLock // unused entries: refs 0, ch empty
}

type convLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters; guarded by the shard's mu
}

func newConvLocks() *convLocks {
	t := &convLocks{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*convLock)
		t.shards[i].free = make([]*convLock, 0, lockFree)
	}
	return t
}

func (t *convLocks) shard(conv string) *lockShard {
	return &t.shards[maphash.String(t.seed, conv)%lockShards]
}

// lock waits for the lock of conv or for ctx to end. On success the caller
// must call unlock(conv, l) with the returned l exactly once.
func (t *convLocks) lock(ctx context.Context, conv string) (*convLock, error) {
	s := t.shard(conv)
	s.mu.Lock()
	l := s.m[conv]
	if l == nil {
		if n := len(s.free); n > 0 {
			l = s.free[n-1]
			s.free[n-1] = nil
			s.free = s.free[:n-1]
		} else {
			l = &convLock{ch: make(chan struct{}, 1)}
		}
		s.m[conv] = l
	}
	l.refs++
	s.mu.Unlock()

	select {
	case l.ch <- struct{}{}:
		return l, nil
	case <-ctx.Done():
		s.release(conv, l)
		return nil, ctx.Err()
	}
}

// unlock releases the lock of conv that lock returned as l.
func (t *convLocks) unlock(conv string, l *convLock) {
	<-l.ch
	t.shard(conv).release(conv, l)
}

// release drops one holder or waiter of l; the last one removes the entry
// and keeps it for reuse (its channel is empty then: nobody holds it).
func (s *lockShard) release(conv string, l *convLock) {
	s.mu.Lock()
	if l.refs--; l.refs == 0 {
		delete(s.m, conv)
		if len(s.free) < lockFree {
			s.free = append(s.free, l)
		}
	}
	s.mu.Unlock()
}

// size reports how many conversations have an entry (tests).
func (t *convLocks) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
