package store

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
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
func (s *Store) Published(ctx context.Context, conv string, p Pending) error {
	res, err := s.outbox.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.ID}})
	if err != nil {
		return fmt.Errorf("store: delete %s from the outbox: %w", p.ID, err)
	}
	if res.DeletedCount > 0 {
		return nil
	}
	_, err = s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: conv}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "outbox", Value: p}}}})
	if err != nil {
		return fmt.Errorf("store: pull %s from the outbox of %s: %w", p.ID, conv, err)
	}
	return nil
}
