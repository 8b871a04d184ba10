package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// The outbox holds the events of changes not yet known to be published,
// each a document of the outbox collection (_id its id) written before the
// change: a member change's (members.go) and a new conversation's
// conversation_created (creates.go: after the users' lists, before the
// conversation's document). The writer publishes them and then removes them
// ([Store.Published], [Store.PublishedLater]); a sweeper republishes what a
// failed publish left behind ([Store.Outboxes]). So the collection holds
// only what is not published yet, and a sweep reads a few documents, not
// the conversations (on the embedded store any filter but _id reads a
// whole collection: a sweep of the conversations every 5 s cost a third
// of the CPU at 10,000 conversations). Earlier versions kept
// conversation_created in the array field "outbox" of the conversation's
// document: [Store.DocOutboxes] reads those.

// Pending is one event in a conversation's outbox.
type Pending struct {
	natter.Event `bson:",inline"`
	// At is when the change was written, Unix milliseconds.
	At int64 `bson:"at"`
}

// Outbox is the pending events of one conversation, oldest first.
type Outbox struct {
	Conv    string    `bson:"_id"`
	Pending []Pending `bson:"outbox"`
}

// DocOutboxes returns up to limit conversations whose documents hold an
// event in their "outbox" array written at or before before (Unix ms):
// what an earlier version left unpublished there. On MongoDB the query
// uses the sparse index outbox_at (on "outbox.0.at"); FerretDB scans the
// collection: call it once (a sweeper's first sweep), not per sweep.
func (s *Store) DocOutboxes(ctx context.Context, before int64, limit int64) ([]Outbox, error) {
	cur, err := s.convs.Find(ctx, bson.D{{Key: "outbox.0.at", Value: bson.D{{Key: "$lte", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "outbox", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: find outboxes: %w", err)
	}
	var out []Outbox
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("store: read outboxes: %w", err)
	}
	return out, nil
}

// Outboxes returns the pending events of the outbox collection written at
// or before before (Unix ms), up to limit, oldest first, by conversation.
// The collection holds only the events not published yet, so this reads a
// few documents on any store.
func (s *Store) Outboxes(ctx context.Context, before int64, limit int64) ([]Outbox, error) {
	var out []Outbox
	cur, err := s.outbox.Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lte", Value: before}}}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: find outbox events: %w", err)
	}
	var docs []outboxDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("store: read outbox events: %w", err)
	}
	at := make(map[string]int, len(out))
	for i, o := range out {
		at[o.Conv] = i
	}
	for _, d := range docs {
		i, ok := at[d.Conv]
		if !ok {
			i = len(out)
			at[d.Conv] = i
			out = append(out, Outbox{Conv: d.Conv})
		}
		out[i].Pending = append(out[i].Pending, d.Pending)
	}
	return out, nil
}

// Published removes p, published, from conversation conv's outbox: the
// outbox collection, or (an earlier version's conversation_created) the
// conversation's document. p must be the entry as written or read (the
// pull matches it by value: FerretDB's $pull does not take a condition).
// Removing one that is gone is no error.
func (s *Store) Published(ctx context.Context, conv string, p Pending) error {
	var res *mongo.DeleteResult
	err := s.wgate.do(ctx, func() error {
		var err error
		res, err = s.outbox.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.ID}})
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete %s from the outbox: %w", p.ID, err)
	}
	if res.DeletedCount > 0 {
		return nil
	}
	err = s.wgate.do(ctx, func() error {
		_, err := s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: conv}}, pullUpdate(p))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: pull %s from the outbox of %s: %w", p.ID, conv, err)
	}
	return nil
}

// PublishedLater removes p, published, from the outbox collection in the
// next batch of removals (one statement for the requests of this Store in
// flight) and returns at once: the removal is only cleanup, a request need
// not wait for it. One that fails, or never runs (the process stops
// first), leaves p for the sweeper, which publishes it again with its id
// (stored once within the stream's dedup window) and removes it.
func (s *Store) PublishedLater(conv string, p Pending) {
	s.pulls.later(pull{conv, p}, pullTimeout)
}

// pullTimeout bounds a removal queued by PublishedLater.
const pullTimeout = 30 * time.Second

func pullUpdate(p Pending) bson.D {
	return bson.D{{Key: "$pull", Value: bson.D{{Key: "outbox", Value: p}}}}
}

// maxPullBatch bounds the removals of one statement.
const maxPullBatch = 128

// pull is one published event to remove from the outbox collection.
type pull struct {
	conv string
	p    Pending
}

// pullBatch removes the events of batch from the outbox collection in one
// statement (on FerretDB a scan of that collection, which holds only the
// events not published yet).
func (s *Store) pullBatch(ctx context.Context, batch []*batchReq[pull]) {
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.v.p.ID
	}
	err := s.wgate.bulk(ctx, func() error { // nobody waits for it
		_, err := s.outbox.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		return err
	})
	for _, r := range batch {
		r.done <- err
	}
}
