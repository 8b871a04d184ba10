package msglog

import (
	"context"
	"hash/maphash"
	"sync"
)

const lockShards = 64

// convLocks serialises appends per conversation inside one process. An entry
// lives only while someone holds or waits for it, so the table does not grow
// with the number of conversations ever seen.
type convLocks struct {
	seed   maphash.Seed
	shards [lockShards]lockShard
}

type lockShard struct {
	mu sync.Mutex
	m  map[string]*convLock
}

type convLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters; guarded by the shard's mu
}

func newConvLocks() *convLocks {
	t := &convLocks{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*convLock)
	}
	return t
}

// lock waits for the lock of conv or for ctx to end. On success the caller
// must call the returned unlock exactly once.
func (t *convLocks) lock(ctx context.Context, conv string) (unlock func(), err error) {
	s := &t.shards[maphash.String(t.seed, conv)%lockShards]
	s.mu.Lock()
	l := s.m[conv]
	if l == nil {
		l = &convLock{ch: make(chan struct{}, 1)}
		s.m[conv] = l
	}
	l.refs++
	s.mu.Unlock()

	release := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.m, conv)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
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
