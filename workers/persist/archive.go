package persist

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/store"
)

// The archive's blocks (store.Block, docs/design.md "The archive"): persist
// gathers the messages it stores by (conversation, block) in memory and
// writes each block once it holds all store.BlockSize of them, in one
// InsertMany per batch. It needs no read for that while one process sees
// a conversation's messages. When a block is still not complete here once
// its last message arrived and no batch handled concurrently can complete
// it (a restart or another replica took some of its messages, or it was
// evicted), it reads the block from the log's hot tier instead, and writes
// it only if each message it did not store itself is in the messages
// collection (a lookup by _id each): a block holds what the messages
// collection holds, never a message persist dead-lettered (the store
// refused it MaxDeliver times) nor one not stored yet. A block neither way
// can build (the hot tier no longer holds its start, a message of it is not
// stored) is left out: a history read of it falls back to the messages
// collection and writes it then if it is complete there (convsvc).
//
// Blocks are derived data: failing to write one never fails the batch (its
// messages are stored); it is retried with the next batch.

// maxOpenBlocks bounds the blocks gathered in memory (at most BlockSize
// messages each); beyond it the least recently added to are dropped.
const maxOpenBlocks = 4096

// maxRetryBlocks bounds the complete blocks kept for another attempt after
// a failed write.
const maxRetryBlocks = 1024

type blockKey struct {
	conv string
	k    uint64
}

// fetchBlock is a block to read from the log; stored has bit i set when
// this process stored seq first+i.
type fetchBlock struct {
	blockKey
	stored uint64
}

type openBlock struct {
	msgs []natter.Message // by seq - first; Seq 0 where missing
	have int
	used uint64 // archiver.tick when last added to
}

// fetchAfter is how many batches after the one with a block's last message
// the block may still be completed by others before it is read from the
// log: a batch handled concurrently (the runner's Concurrency) may hold its
// missing messages.
const fetchAfter = 2

// archiver gathers blocks across batches. Its methods are safe for
// concurrent use (the runner calls Handle concurrently).
type archiver struct {
	mu   sync.Mutex
	open map[blockKey]*openBlock
	tick uint64
	// batches counts add calls; ended holds the open blocks whose last
	// message came, with the batch it came in.
	batches uint64
	ended   map[blockKey]uint64
	retry   []store.Block
	// inflight counts the batches being handled (begin to finish).
	inflight int
}

// begin and finish bracket the handling of a batch.
func (a *archiver) begin() {
	a.mu.Lock()
	a.inflight++
	a.mu.Unlock()
}

func (a *archiver) finish() {
	a.mu.Lock()
	a.inflight--
	a.mu.Unlock()
}

func newArchiver() *archiver {
	return &archiver{open: map[blockKey]*openBlock{}, ended: map[blockKey]uint64{}}
}

// add puts the stored messages of a batch in their blocks and returns the
// blocks that became complete, those to read from the log (a block's last
// message came and the block is still not complete here, with no other
// batch in flight or fetchAfter batches later) and those left from a
// failed write.
func (a *archiver) add(batch []natter.Message) (done []store.Block, fetch []fetchBlock) {
	a.mu.Lock()
	defer a.mu.Unlock()
	done, a.retry = a.retry, nil
	a.batches++
	for _, m := range batch {
		if m.Seq == 0 {
			continue
		}
		key := blockKey{m.Conv, store.BlockOf(m.Seq)}
		first := store.BlockFirst(key.k)
		ob := a.open[key]
		if ob == nil {
			ob = &openBlock{msgs: make([]natter.Message, store.BlockSize)}
			a.open[key] = ob
		}
		a.tick++
		ob.used = a.tick
		if i := m.Seq - first; ob.msgs[i].Seq == 0 {
			ob.msgs[i] = m
			ob.have++
		}
		switch {
		case ob.have == store.BlockSize:
			done = append(done, store.Block{Conv: key.conv, K: key.k, Msgs: ob.msgs})
			delete(a.open, key)
			delete(a.ended, key)
		case m.Seq == first+store.BlockSize-1:
			a.ended[key] = a.batches
		}
	}
	// With no other batch in flight, none can complete them.
	for key, b := range a.ended {
		if a.inflight <= 1 || a.batches-b >= fetchAfter {
			fb := fetchBlock{blockKey: key}
			if ob := a.open[key]; ob != nil {
				for i := range ob.msgs {
					if ob.msgs[i].Seq != 0 {
						fb.stored |= 1 << i
					}
				}
			}
			fetch = append(fetch, fb)
			delete(a.ended, key)
			delete(a.open, key)
		}
	}
	a.evict()
	return done, fetch
}

// evict drops the least recently used quarter of the open blocks once there
// are more than maxOpenBlocks, so that its cost is a sort per maxOpenBlocks/4
// blocks opened.
func (a *archiver) evict() {
	if len(a.open) <= maxOpenBlocks {
		return
	}
	used := make([]uint64, 0, len(a.open))
	for _, ob := range a.open {
		used = append(used, ob.used)
	}
	slices.Sort(used)
	cut := used[len(used)/4]
	for k, ob := range a.open {
		if ob.used < cut {
			delete(a.open, k)
			// An ended block is read from the log all the same.
		}
	}
}

// failed keeps blocks whose write failed for the next batch.
func (a *archiver) failed(blocks []store.Block) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retry = append(a.retry, blocks...)
	if n := len(a.retry); n > maxRetryBlocks {
		a.retry = a.retry[n-maxRetryBlocks:]
	}
}

// archive writes the blocks that batch (just stored) completes. It never
// fails the batch.
func (h *Handler) archive(ctx context.Context, batch []natter.Message) {
	done, fetch := h.arch.add(batch)
	for _, fb := range fetch {
		if b, ok := h.fetchBlock(ctx, fb); ok {
			done = append(done, b)
		}
	}
	if len(done) == 0 {
		return
	}
	if err := h.scrubBlocks(ctx, done); err != nil {
		h.lg.Warn("persist: archive blocks not written (deleted messages not read), retried with the next batch", "n", len(done), "err", err)
		h.arch.failed(done)
		return
	}
	kept, err := h.applyFloors(ctx, done)
	if err != nil {
		h.lg.Warn("persist: archive blocks not written (retention floors not read), retried with the next batch", "n", len(done), "err", err)
		h.arch.failed(done)
		return
	}
	if done = kept; len(done) == 0 {
		return
	}
	if _, err := h.st.InsertBlocks(ctx, done); err != nil {
		if errors.Is(err, store.ErrBadBlock) {
			h.lg.Warn("persist: archive blocks dropped", "n", len(done), "err", err)
			return
		}
		h.lg.Warn("persist: archive blocks not written, retried with the next batch", "n", len(done), "err", err)
		h.arch.failed(done)
	}
}

// fetchBlock reads a block from the log; ok is false (and it is logged) when
// the log no longer holds it or a message of it that this process did not
// store is not in the messages collection.
func (h *Handler) fetchBlock(ctx context.Context, fb fetchBlock) (store.Block, bool) {
	first := store.BlockFirst(fb.k)
	msgs, _, err := h.log.After(ctx, fb.conv, first-1, store.BlockSize)
	if err != nil || len(msgs) != store.BlockSize {
		if err != nil && !errors.Is(err, msglog.ErrTrimmed) {
			h.lg.Warn("persist: archive block not read from the log", "conv", fb.conv, "first", first, "err", err)
		} else {
			h.lg.Info("persist: archive block no longer in the hot tier, built at its first read", "conv", fb.conv, "first", first)
		}
		return store.Block{}, false
	}
	// The stored copies of deleted messages have no text: compare with
	// the log's entries as the archive keeps them.
	if err := h.scrubBlocks(ctx, []store.Block{{Conv: fb.conv, K: fb.k, Msgs: msgs}}); err != nil {
		h.lg.Warn("persist: archive block not written: deleted messages not read", "conv", fb.conv, "first", first, "err", err)
		return store.Block{}, false
	}
	for i := range msgs {
		if fb.stored&(1<<i) != 0 {
			continue
		}
		m, err := h.st.GetMessage(ctx, msgs[i].ID)
		if err != nil || !sameMessage(m, msgs[i]) {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				h.lg.Warn("persist: archive block not written: a message not checked", "conv", fb.conv, "first", first, "seq", msgs[i].Seq, "err", err)
			} else {
				h.lg.Info("persist: archive block not written: a message of it is not stored (dead-lettered or not yet), built at its first read once it is",
					"conv", fb.conv, "first", first, "seq", msgs[i].Seq)
			}
			return store.Block{}, false
		}
	}
	return store.Block{Conv: fb.conv, K: fb.k, Msgs: msgs}, true
}

// sameMessage reports whether a and b are the same message, attachments
// included.
func sameMessage(a, b natter.Message) bool {
	if len(a.Attachments) == 0 && len(b.Attachments) == 0 {
		a.Attachments, b.Attachments = nil, nil
	}
	return reflect.DeepEqual(a, b)
}
