package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Locks: a mutable document that several writers share (a conversation's
// member chunks, a user's list chunk) is read, changed and rewritten under a
// lease lock, a document of the locks collection whose _id names what it
// guards. Taking one is an insert: a unique _id makes it atomic on MongoDB
// and on FerretDB alike, where a conditional update is not (FerretDB v1
// reads the document, then rewrites it by _id in a second statement, so two
// concurrent updates of one document can lose one of them). Releasing is a
// delete. A lock older than [LockLease] belongs to a writer that died (every
// request ends within the service's store timeout): the next taker deletes
// it and takes it.

// LockLease is how long a lock is held at most: a taker removes an older one.
const LockLease = 10 * time.Second

// lock takes the locks named ids (all or none), waiting while others hold
// them, until ctx ends. The returned func releases them (with a context of
// its own, so that a request that ran out of time still releases).
func (s *Store) lock(ctx context.Context, ids ...string) (func(), error) {
	if len(ids) == 0 {
		return func() {}, nil
	}
	wait := time.Millisecond
	for {
		now := time.Now().UnixMilli()
		docs := make([]any, len(ids))
		for i, id := range ids {
			docs[i] = bson.D{{Key: "_id", Value: id}, {Key: "at", Value: now}}
		}
		_, err := s.locks.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err == nil {
			return func() { s.unlock(ids) }, nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || !onlyDuplicateKeys(bwe) {
			s.unlock(ids)
			return nil, fmt.Errorf("store: lock: %w", err)
		}
		// Some are held: give back those taken (all or none, so that two
		// writers of overlapping sets cannot hold each other up), break
		// the stale ones, wait and try again.
		held := make(map[int]bool, len(bwe.WriteErrors))
		for _, we := range bwe.WriteErrors {
			held[we.Index] = true
		}
		var taken, busy []string
		for i, id := range ids {
			if held[i] {
				busy = append(busy, id)
			} else {
				taken = append(taken, id)
			}
		}
		s.unlock(taken)
		if err := s.breakStale(ctx, busy); err != nil {
			return nil, err
		}
		t := time.NewTimer(wait + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock %s: %w", busy[0], ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// breakStale deletes the locks among ids older than LockLease.
func (s *Store) breakStale(ctx context.Context, ids []string) error {
	stale := time.Now().Add(-LockLease).UnixMilli()
	for _, id := range ids {
		var doc struct {
			At int64 `bson:"at"`
		}
		err := s.locks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: read lock: %w", err)
		}
		if doc.At < stale {
			if _, err := s.locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "at", Value: doc.At}}); err != nil {
				return fmt.Errorf("store: break lock: %w", err)
			}
		}
	}
	return nil
}

// unlock deletes the locks ids. The locks collection holds only the locks
// held now, so the $in (a scan on FerretDB) reads a few documents.
func (s *Store) unlock(ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if len(ids) == 1 {
		_, err = s.locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: ids[0]}})
	} else {
		_, err = s.locks.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	}
	_ = err // left behind: the lease frees it
}
