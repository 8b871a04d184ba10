package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Locks: a mutable document that several writers share (a conversation's
// member chunks and head, a user's list bucket) is read, changed and
// rewritten under a lease lock, a document of the locks collection whose _id
// names what it guards. Taking one is an insert: a unique _id makes it
// atomic on MongoDB and on FerretDB alike, where a conditional update is not
// (FerretDB v1 reads the document, then rewrites it by _id in a second
// statement, so two concurrent updates of one document can lose one of
// them). Each taking carries a token of its own: releasing deletes the lock
// only while it still carries that token, so a holder never frees a lock
// another one took.
//
// The invariant the locks keep: no write issued under a lock lands after the
// lock was released or broken. A write the driver gave up on (its request's
// context ended) is not undone: the server still runs it, later (FerretDB
// runs every command it read to the end, whatever the client did). So the
// work under a lock ([Store.locked]) runs on a context detached from the
// request's and waits for the answer of every write it issues before it
// releases the lock. The request's deadline bounds only the wait for the
// lock: a change that took it runs to its end (past the deadline, when the
// store is slow) and its caller gets its real outcome, so an "unavailable"
// caused by the deadline means the change did not start.
// While held, a lock's lease is renewed every LockLease/4, so it is never
// broken under a holder that is alive. A lock whose lease ran out belongs to
// a holder that died: the next taker deletes it and takes it. A holder that
// finds its lock gone answers ErrLockLost once its writes are answered.

// LockLease is how long a lock lives without its holder renewing it: a taker
// removes an older one.
const LockLease = 10 * time.Second

// lockDoc is a lock: At is when it was taken or last renewed, Token who
// holds it.
type lockDoc struct {
	ID    string `bson:"_id"`
	At    int64  `bson:"at"`
	Token string `bson:"token"`
}

// held is a taking of locks: release it once.
type held struct {
	s     *Store
	ids   []string
	token string
	stop  chan struct{}
	done  chan struct{}
	// lost is closed when a renewal found a lock gone (broken).
	lost chan struct{}
}

// locked runs fn holding the locks ids (see above). Waiting for the locks
// ends with ctx; once they are held, fn runs to its end on a context
// detached from ctx, and locked returns its outcome whatever ctx did
// meanwhile: every write fn issued was answered before the locks are
// released, and a caller told of an error of ctx was told the truth (the
// change did not start). A lock found lost meanwhile (its lease ran out
// under a holder whose renewals all failed) makes it answer ErrLockLost,
// so that the caller retries: fn's writes are never cut short, which
// would only leave one to land later.
func (s *Store) locked(ctx context.Context, ids []string, fn func(ctx context.Context) error) error {
	h, err := s.lock(ctx, ids...)
	if err != nil {
		return err
	}
	defer h.release()
	err = fn(context.WithoutCancel(ctx))
	select {
	case <-h.lost:
		return fmt.Errorf("store: %v: %w", ids, ErrLockLost)
	default:
	}
	return err
}

// lock takes the locks named ids (all or none), waiting while others hold
// them, until ctx ends, and renews them until released.
func (s *Store) lock(ctx context.Context, ids ...string) (*held, error) {
	token := newToken()
	h := &held{s: s, ids: ids, token: token, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
	if len(ids) == 0 {
		close(h.done)
		return h, nil
	}
	wait := time.Millisecond
	for {
		now := time.Now().UnixMilli()
		docs := make([]any, len(ids))
		for i, id := range ids {
			docs[i] = lockDoc{ID: id, At: now, Token: token}
		}
		// Detached: the outcome of the insert is known, so a lock taken
		// just as ctx ended is released rather than left to its lease.
		err := s.wgate.do(context.WithoutCancel(ctx), func() error {
			_, err := s.locks.InsertMany(context.WithoutCancel(ctx), docs, options.InsertMany().SetOrdered(false))
			return err
		})
		if err == nil {
			if ctx.Err() != nil {
				s.unlock(ids, token)
				return nil, fmt.Errorf("store: lock: %w", ctx.Err())
			}
			go h.renew()
			return h, nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || !onlyDuplicateKeys(bwe) {
			s.unlock(ids, token)
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
		s.unlock(taken, token)
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

// renew moves the lease of the held locks on every quarter lease until
// release; a lock found gone closes lost.
func (h *held) renew() {
	defer close(h.done)
	t := time.NewTicker(h.s.lease / 4)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.s.lease/2)
		// Not behind the write gate (gate.go): a renewal must not wait
		// for the writes queued there, the holder's own held write among
		// them, or the lease runs out under a live holder.
		res, err := h.s.locks.UpdateMany(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: h.ids}}}, {Key: "token", Value: h.token}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: time.Now().UnixMilli()}}}})
		cancel()
		if err == nil && res.MatchedCount < int64(len(h.ids)) {
			close(h.lost)
			<-h.stop
			return
		}
	}
}

// release stops the renewal and deletes the locks (those still carrying
// h's token).
func (h *held) release() {
	if len(h.ids) == 0 {
		return
	}
	close(h.stop)
	<-h.done
	h.s.unlock(h.ids, h.token)
}

func newToken() string {
	var b [12]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return hex.EncodeToString(b[:])
}

// breakStale deletes the locks among ids older than LockLease.
func (s *Store) breakStale(ctx context.Context, ids []string) error {
	stale := time.Now().Add(-s.lease).UnixMilli()
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
			err := s.wgate.do(ctx, func() error {
				_, err := s.locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "at", Value: doc.At}})
				return err
			})
			if err != nil {
				return fmt.Errorf("store: break lock: %w", err)
			}
		}
	}
	return nil
}

// unlock deletes the locks ids that carry token. The locks collection
// holds only the locks held now, so the filter (a scan on FerretDB) reads a
// few documents.
func (s *Store) unlock(ids []string, token string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.wgate.do(ctx, func() error {
		_, err := s.locks.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "token", Value: token}})
		return err
	})
	_ = err // left behind: the lease frees it
}
