package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// ThreadChunk is the most reply seqs one chunk key of a thread holds
// (subjects.ActionsThreadKey): a thread of n replies has ceil(n/256) chunk
// keys of at most ~5 KB each, all read by one batched direct get.
const ThreadChunk = 256

// AddReply records reply, a message whose Thread is root's id, in root's
// thread: its seq in the thread's chunk keys (chunk i holds the replies
// ThreadChunk*i .. ThreadChunk*(i+1)-1 in the order they were recorded,
// each chunk's seqs sorted), then the count and the newest TS on root's
// record. It is idempotent (a seq already recorded is not added again:
// looked up in the last two chunks, in all of them for a seq older than
// those), so the edge, a retry and the persist role may all apply one reply.
func (b *Bucket) AddReply(ctx context.Context, root, reply natter.Message) error {
	if reply.Thread != root.ID || reply.Conv != root.Conv || reply.Seq <= root.Seq {
		return nil
	}
	rec, _, err := b.get(ctx, subjects.ActionsKey(root.Conv, root.Seq))
	if err != nil {
		return err
	}
	c := rec.ThreadReplies / ThreadChunk
	if c > 0 {
		prev, _, err := getJSON[[]uint64](ctx, b.kv, subjects.ActionsThreadKey(root.Conv, root.Seq, c-1))
		if err != nil {
			return err
		}
		if _, found := slices.BinarySearch(prev, reply.Seq); found {
			c--
		} else if len(prev) > 0 && reply.Seq < prev[0] {
			// Older than the last two chunks (a late re-apply): look in
			// them all, with one batched read.
			all, err := b.ThreadSeqs(ctx, root.Conv, root.Seq)
			if err != nil {
				return err
			}
			if _, found := slices.BinarySearch(all, reply.Seq); found {
				return nil
			}
		}
	}
	var n int // replies in chunks 0..c
	for {
		seqs, err := b.casChunk(ctx, subjects.ActionsThreadKey(root.Conv, root.Seq, c), reply.Seq)
		if err != nil {
			return err
		}
		if seqs != nil {
			n = c*ThreadChunk + len(seqs)
			break
		}
		c++ // full: the next chunk
	}
	_, err = b.update(ctx, root.Conv, root.Seq, root.ID, func(r *Record) bool {
		changed := false
		if n > r.ThreadReplies {
			r.ThreadReplies, changed = n, true
		}
		if reply.TS > r.ThreadLastAt {
			r.ThreadLastAt, changed = reply.TS, true
		}
		return changed
	})
	return err
}

// casChunk adds seq to the chunk of key and returns the chunk's seqs after
// it; nil when the chunk is full without seq.
func (b *Bucket) casChunk(ctx context.Context, key string, seq uint64) ([]uint64, error) {
	for attempt := range updateAttempts {
		seqs, rev, err := getJSON[[]uint64](ctx, b.kv, key)
		if err != nil {
			return nil, err
		}
		i, found := slices.BinarySearch(seqs, seq)
		if found {
			return seqs, nil
		}
		if len(seqs) >= ThreadChunk {
			return nil, nil
		}
		seqs = slices.Insert(seqs, i, seq)
		val, err := json.Marshal(seqs)
		if err != nil {
			return nil, err
		}
		if _, retry, err := write(ctx, b.kv, key, val, rev, attempt); !retry {
			if err != nil {
				return nil, err
			}
			return seqs, nil
		}
	}
	return nil, fmt.Errorf("%w: %s after %d attempts", ErrConflict, key, updateAttempts)
}

// ThreadSeqs returns the seqs of the replies in the thread whose root is
// the message with seq rootSeq in conv, ascending: every chunk key of the
// thread with one batched direct get (no scan of the log or the store).
func (b *Bucket) ThreadSeqs(ctx context.Context, conv string, rootSeq uint64) ([]uint64, error) {
	var out []uint64
	var bad error
	err := b.multiLast(ctx, []string{b.prefix + subjects.ActionsThreadFilter(conv, rootSeq)}, func(m *nats.Msg) {
		if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
			return
		}
		var seqs []uint64
		if err := json.Unmarshal(m.Data, &seqs); err != nil {
			bad = fmt.Errorf("actions: thread %s %d: %w: %w", conv, rootSeq, ErrCorrupt, err)
			return
		}
		out = append(out, seqs...)
	})
	if err != nil {
		return nil, fmt.Errorf("actions: thread %s %d: %w", conv, rootSeq, err)
	}
	slices.Sort(out)
	return slices.Compact(out), bad
}
