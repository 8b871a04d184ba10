package store

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// The outbox of a conversation is the array field "outbox" of its document:
// the events of its changes not yet known to be published. A change and its
// events are written by one single-document write (atomic on MongoDB and
// FerretDB alike, no transaction needed); the writer publishes them and then
// pulls them ([Store.Published]); a sweeper republishes what a failed
// publish left behind ([Store.Outboxes]).

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
	return out, nil
}

// Published pulls p, published, from conversation conv's outbox. p must be
// the entry as written or read (the pull matches it by value: FerretDB's
// $pull does not take a condition). Pulling one that is gone is no error.
func (s *Store) Published(ctx context.Context, conv string, p Pending) error {
	_, err := s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: conv}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "outbox", Value: p}}}})
	if err != nil {
		return fmt.Errorf("store: pull %s from the outbox of %s: %w", p.ID, conv, err)
	}
	return nil
}
