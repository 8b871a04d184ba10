package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// The outbox holds the events of changes not yet known to be published: a
// new conversation's conversation_created is in the array field "outbox" of
// its document (written by the insert that creates it), a member change's
// event is a document of the outbox collection, _id its id, written before
// the change (members.go). The writer publishes them and then removes them
// ([Store.Published]); a sweeper republishes what a failed publish left
// behind ([Store.Outboxes]).

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

// Outboxes returns up to limit conversations whose oldest pending event was
// written at or before before (Unix ms), with all their pending events.
//
// On MongoDB the query uses the sparse index outbox_at (on "outbox.0.at",
// which only conversations with a pending event have); FerretDB scans the
// collection, once per sweep.
func (s *Store) Outboxes(ctx context.Context, before int64, limit int64) ([]Outbox, error) {
	cur, err := s.convs.Find(ctx, bson.D{{Key: "outbox.0.at", Value: bson.D{{Key: "$lte", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "outbox", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: find outboxes: %w", err)
	}
	var out []Outbox
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("store: read outboxes: %w", err)
	}
	// The member changes' events: the collection holds only those not
	// published yet, so this reads a few documents even on FerretDB.
	cur, err = s.outbox.Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lte", Value: before}}}},
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

// Published pulls p, published, from conversation conv's outbox. p must be
// the entry as written or read (the pull matches it by value: FerretDB's
// $pull does not take a condition). Pulling one that is gone is no error.
// A conversation_created is only ever in its conversation's document
// (CreateConversation writes it there): it costs no delete, and the pulls
// of the requests of one Store in flight go in one bulk write (a batcher,
// batch.go).
func (s *Store) Published(ctx context.Context, conv string, p Pending) error {
	if p.Kind == natter.EventConversationCreated {
		if err := s.pulls.do(ctx, pull{conv, p}); err != nil {
			return fmt.Errorf("store: pull %s from the outbox of %s: %w", p.ID, conv, err)
		}
		return nil
	}
	res, err := s.outbox.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.ID}})
	if err != nil {
		return fmt.Errorf("store: delete %s from the outbox: %w", p.ID, err)
	}
	if res.DeletedCount > 0 {
		return nil
	}
	_, err = s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: conv}}, pullUpdate(p))
	if err != nil {
		return fmt.Errorf("store: pull %s from the outbox of %s: %w", p.ID, conv, err)
	}
	return nil
}

func pullUpdate(p Pending) bson.D {
	return bson.D{{Key: "$pull", Value: bson.D{{Key: "outbox", Value: p}}}}
}

// maxPullBatch bounds the pulls of one bulk write.
const maxPullBatch = 128

// pull is one published event to pull from conversation conv's outbox.
type pull struct {
	conv string
	p    Pending
}

// pullBatch pulls the events of batch in one unordered bulk write.
func (s *Store) pullBatch(ctx context.Context, batch []*batchReq[pull]) {
	models := make([]mongo.WriteModel, len(batch))
	for i, r := range batch {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: r.v.conv}}).SetUpdate(pullUpdate(r.v.p))
	}
	_, err := s.convs.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	failed := map[int]error{}
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			failed[we.Index] = we
		}
		err = nil
	}
	for i, r := range batch {
		if e, ok := failed[i]; ok {
			r.done <- e
		} else {
			r.done <- err
		}
	}
}
