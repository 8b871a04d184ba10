package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	natter "github.com/natter-im/natter"
)

// Batched creates: the direct conversations that the requests of one Store
// create at the same time are written together, a group commit. A create
// starts a batch writer when fewer than createWriters run; the creates
// arriving while they write wait and go in the next batch, so a batch is as
// large as the load makes it (up to maxCreateBatch) and a lone create waits
// for nobody. A batch is:
//
//  1. one _id lookup of each conversation: those that exist go the
//     one-by-one way (createOne: the stored one is answered, its
//     memberships completed), and so do those the batch names twice, once
//     the first is written;
//  2. the users' lists of the others, in one edit of their buckets
//     (editBuckets: one insert of the new buckets, one lock, one bulk
//     rewrite of the others' open parts);
//  3. one unordered insert of their documents; one that another writer
//     inserted meanwhile (another service replica) goes the one-by-one way.
//
// The lists come first: a batch cut short (a crash) leaves conversations
// listed that do not exist, which a list skips (no document: not found, not
// a member), and a retry of the create completes; a conversation exists
// only with its lists written. On the embedded store, whose SQLite has one
// writer and makes a waiting writer sleep and retry (busy_timeout), n
// concurrent creates make a few writes of n documents instead of ~5n small
// ones racing for the lock: the wait of the unlucky ones was the p99.

// maxCreateBatch bounds the creates of one batch.
const maxCreateBatch = 128

// createWriters is how many batches one Store writes at once: a batch is a
// few round trips one after the other, and others overlap them.
const createWriters = 2

// errTaken says a batched create's conversation exists (or another create
// of its batch names it): create it one by one.
var errTaken = errors.New("store: conversation taken")

// createQueue holds the creates waiting for the next batch.
type createQueue struct {
	mu      sync.Mutex
	waiting []*createReq
	running int // batch writers
	// cut, when set (tests), ends a batch with its error after the lists
	// are written: a crash before the documents.
	cut func() error
}

type createReq struct {
	c        natter.Conversation
	outbox   []Pending
	deadline time.Time // zero: none
	done     chan error
}

// createBatched creates direct conversation c in the next batch: nil when
// it was new and is created, errTaken when it exists, else the error.
func (s *Store) createBatched(ctx context.Context, c natter.Conversation, outbox []Pending) error {
	req := &createReq{c: c, outbox: outbox, done: make(chan error, 1)}
	req.deadline, _ = ctx.Deadline()
	q := &s.creates
	q.mu.Lock()
	q.waiting = append(q.waiting, req)
	start := q.running < createWriters
	if start {
		q.running++
	}
	q.mu.Unlock()
	if start {
		go s.runCreates()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The batch may still create it: a retry then finds it.
		return fmt.Errorf("store: create conversation: %w", ctx.Err())
	}
}

// runCreates writes batches until none is waiting.
func (s *Store) runCreates() {
	q := &s.creates
	for {
		q.mu.Lock()
		n := min(len(q.waiting), maxCreateBatch)
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		if n == 0 {
			q.waiting = nil
			q.running--
		}
		q.mu.Unlock()
		if n == 0 {
			return
		}
		s.createBatch(batch)
	}
}

// createBatch writes batch and answers each of its creates.
func (s *Store) createBatch(batch []*createReq) {
	// The batch runs until the last of its creates gives up (30s for
	// one without a deadline).
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
	defer cancel()
	// A conversation the batch names again is answered after the first
	// is written: errTaken (it then reads the stored one), or the first's
	// error.
	seen := make(map[string]bool, len(batch))
	var again, check []*createReq
	for _, r := range batch {
		if seen[r.c.ID] {
			again = append(again, r)
		} else {
			seen[r.c.ID] = true
			check = append(check, r)
		}
	}
	failed := s.createDistinct(ctx, check)
	for _, r := range again {
		if err, ok := failed[r.c.ID]; ok {
			r.done <- err
		} else {
			r.done <- errTaken
		}
	}
}

// createDistinct writes the creates of batch, which name distinct
// conversations, answers each, and returns the errors of those that
// failed by conversation.
func (s *Store) createDistinct(ctx context.Context, batch []*createReq) map[string]error {
	failed := map[string]error{}
	answer := func(rs []*createReq, err error) {
		for _, r := range rs {
			if err != nil && !errors.Is(err, errTaken) {
				failed[r.c.ID] = err
			}
			r.done <- err
		}
	}
	// 1. Those that exist go one by one.
	exists := make([]bool, len(batch))
	err := forEach(len(batch), func(i int) error {
		var d struct {
			ID string `bson:"_id"`
		}
		var err error
		exists[i], err = findByID(ctx, s.convs, batch[i].c.ID, &d)
		return err
	})
	if err != nil {
		answer(batch, fmt.Errorf("store: create conversation: %w", err))
		return failed
	}
	var taken, fresh []*createReq
	for i, r := range batch {
		if exists[i] {
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
		for _, m := range r.c.Members {
			id := bucketID(m, r.c.ID)
			edits[id] = append(edits[id], r.c.ID)
		}
	}
	err = s.editBuckets(ctx, edits, true, true)
	if err == nil && s.creates.cut != nil {
		err = s.creates.cut()
	}
	if err != nil {
		answer(fresh, err)
		return failed
	}
	// 3. The documents; one inserted meanwhile by another writer goes
	// one by one.
	docs := make([]any, len(fresh))
	for i, r := range fresh {
		docs[i] = convDoc(r.c, r.outbox)
	}
	dups, err := s.insertDups(ctx, s.convs, docs)
	if err != nil {
		answer(fresh, fmt.Errorf("store: create conversation: %w", err))
		return failed
	}
	for i, r := range fresh {
		if dups[i] {
			answer([]*createReq{r}, errTaken)
		} else {
			answer([]*createReq{r}, nil)
		}
	}
	return failed
}
