package store

import (
	"context"
	"errors"
	"fmt"

	natter "github.com/natter-im/natter"
)

// Batched creates: the direct conversations that the requests of one Store
// create at the same time are written together (a batcher, batch.go). A
// batch is:
//
//  1. one lookup of their _ids (lookups.go): those that exist go the
//     one-by-one way (createOne: the stored one is answered, its
//     memberships completed), and so do those the batch names twice, once
//     the first is written;
//  2. the users' lists of the others, in one edit of their buckets
//     (editBuckets: one insert of the new buckets, one lock, one bulk
//     rewrite of the others' open parts);
//  3. one insert of their events into the outbox collection, then one
//     unordered insert of their documents; one that another writer
//     inserted meanwhile (another service replica) goes the one-by-one way.
//
// The lists come first: a batch cut short (a crash) leaves conversations
// listed that do not exist, which a list skips (no document: not found, not
// a member), and a retry of the create completes; a conversation exists
// only with its lists written. On the embedded store n concurrent creates
// so make a few writes of n documents instead of ~5n small ones racing for
// SQLite's one writer.

// maxCreateBatch bounds the creates of one batch.
const maxCreateBatch = 128

// createWriters is how many batches one Store writes at once: a batch is a
// few round trips one after the other, and others overlap them.
const createWriters = 2

// errTaken says a batched create's conversation exists (or another create
// of its batch names it): create it one by one.
var errTaken = errors.New("store: conversation taken")

// createReq is one create of a batch.
type createReq struct {
	c      natter.Conversation
	outbox []Pending
}

// createBatched creates direct conversation c in the next batch: nil when
// it was new and is created, errTaken when it exists, else the error.
func (s *Store) createBatched(ctx context.Context, c natter.Conversation, outbox []Pending) error {
	err := s.creates.do(ctx, createReq{c, outbox})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The batch may still create it: a retry then finds it.
		return fmt.Errorf("store: create conversation: %w", err)
	}
	return err
}

// createBatch writes batch and answers each of its creates.
func (s *Store) createBatch(ctx context.Context, batch []*batchReq[createReq]) {
	// A conversation the batch names again is answered after the first
	// is written: errTaken (it then reads the stored one), or the first's
	// error.
	seen := make(map[string]bool, len(batch))
	var again, check []*batchReq[createReq]
	for _, r := range batch {
		if seen[r.v.c.ID] {
			again = append(again, r)
		} else {
			seen[r.v.c.ID] = true
			check = append(check, r)
		}
	}
	failed := s.createDistinct(ctx, check)
	for _, r := range again {
		if err, ok := failed[r.v.c.ID]; ok {
			r.done <- err
		} else {
			r.done <- errTaken
		}
	}
}

// createDistinct writes the creates of batch, which name distinct
// conversations, answers each, and returns the errors of those that
// failed by conversation.
func (s *Store) createDistinct(ctx context.Context, batch []*batchReq[createReq]) map[string]error {
	failed := map[string]error{}
	answer := func(rs []*batchReq[createReq], err error) {
		for _, r := range rs {
			if err != nil && !errors.Is(err, errTaken) {
				failed[r.v.c.ID] = err
			}
			r.done <- err
		}
	}
	// 1. Those that exist go one by one.
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.v.c.ID
	}
	exists, err := s.present(ctx, s.convs, ids)
	if err != nil {
		answer(batch, fmt.Errorf("store: create conversation: %w", err))
		return failed
	}
	var taken, fresh []*batchReq[createReq]
	for _, r := range batch {
		if exists[r.v.c.ID] {
			taken = append(taken, r)
		} else {
			fresh = append(fresh, r)
		}
	}
	answer(taken, errTaken)
	if len(fresh) == 0 {
		return failed
	}
	// 2. The users' lists.
	edits := bucketEdits{}
	for _, r := range fresh {
		for _, m := range r.v.c.Members {
			id := bucketID(m, r.v.c.ID)
			edits[id] = append(edits[id], r.v.c.ID)
		}
	}
	err = s.editBuckets(ctx, edits, true, true)
	if err == nil && s.cutCreates != nil {
		err = s.cutCreates()
	}
	if err != nil {
		answer(fresh, err)
		return failed
	}
	// 3. The events (one write for the batch), then the documents; one
	// inserted meanwhile by another writer goes one by one.
	var outbox []Pending
	for _, r := range fresh {
		outbox = append(outbox, r.v.outbox...)
	}
	if err := s.writeOutbox(ctx, outbox); err != nil {
		answer(fresh, err)
		return failed
	}
	docs := make([]any, len(fresh))
	for i, r := range fresh {
		docs[i] = convDoc(r.v.c)
	}
	dups, err := s.insertDups(ctx, s.convs, docs)
	if err != nil {
		answer(fresh, fmt.Errorf("store: create conversation: %w", err))
		return failed
	}
	for i, r := range fresh {
		if dups[i] {
			answer([]*batchReq[createReq]{r}, errTaken)
		} else {
			answer([]*batchReq[createReq]{r}, nil)
		}
	}
	return failed
}
