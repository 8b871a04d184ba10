package store

import (
	"context"
	"sync"
	"time"
)

// batcher is a group commit: the writes that the requests of one Store make
// at the same time go out together. A write starts a batch writer when
// fewer than writers run; those arriving while they write wait and go in
// the next batch, so a batch is as large as the load makes it (up to max)
// and a lone write waits for nobody. Why: the embedded store's SQLite has
// one writer, and one that finds it busy sleeps and retries (busy_timeout:
// 1 ms growing to 100 ms), so many small concurrent writes keep a few of
// them waiting ~100-250 ms; a batch is a few larger writes from one
// goroutine.
type batcher[T any] struct {
	writers, max int
	// write writes a batch and answers each of its requests (once).
	write func(ctx context.Context, batch []*batchReq[T])

	mu      sync.Mutex
	waiting []*batchReq[T]
	running int
}

// batchReq is one request of a batch: its value, and where its answer goes.
type batchReq[T any] struct {
	v        T
	deadline time.Time // zero: none
	done     chan error
}

// do writes v in the next batch and returns its answer, or ctx's error when
// ctx ends first (the batch may still write v).
func (b *batcher[T]) do(ctx context.Context, v T) error {
	deadline, _ := ctx.Deadline()
	r := b.queue(v, deadline)
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// later writes v in the next batch and returns at once: nobody waits for
// its answer. The batch gives it up after timeout.
func (b *batcher[T]) later(v T, timeout time.Duration) {
	b.queue(v, time.Now().Add(timeout))
}

// queue adds a request for v to the next batch, starting a writer when
// fewer than writers run.
func (b *batcher[T]) queue(v T, deadline time.Time) *batchReq[T] {
	r := &batchReq[T]{v: v, deadline: deadline, done: make(chan error, 1)}
	b.mu.Lock()
	b.waiting = append(b.waiting, r)
	start := b.running < b.writers
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
	return r
}

// run writes batches until none is waiting. A batch runs until the last of
// its requests gives up (30s for one without a deadline).
func (b *batcher[T]) run() {
	for {
		b.mu.Lock()
		n := min(len(b.waiting), b.max)
		batch := b.waiting[:n:n]
		b.waiting = b.waiting[n:]
		if n == 0 {
			b.waiting = nil
			b.running--
		}
		b.mu.Unlock()
		if n == 0 {
			return
		}
		var deadline time.Time
		for _, r := range batch {
			d := r.deadline
			if d.IsZero() {
				d = time.Now().Add(30 * time.Second)
			}
			if d.After(deadline) {
				deadline = d
			}
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b.write(ctx, batch)
		cancel()
	}
}
