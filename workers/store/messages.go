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

// InsertMessages stores msgs with one unordered InsertMany. Messages already
// stored (same _id, a redelivery) are not an error: the call is idempotent.
// It returns how many were new.
func (s *Store) InsertMessages(ctx context.Context, msgs []natter.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	docs := make([]any, len(msgs))
	for i := range msgs {
		docs[i] = &msgs[i] // a pointer: a Message in an interface is a copy on the heap
	}
	return s.insertNew(ctx, s.msgs, docs, "messages")
}

// gatedChunk is the most documents one turn of the write gate inserts
// (the embedded store only): a larger InsertMany is split into turns of
// that many, so that the small writes of requests (creates, member
// changes) wait behind one chunk at most, not behind a whole persist
// batch (1,024). FerretDB commits every 100 documents anyway, so the
// split costs the store nothing but a command per chunk.
const gatedChunk = 256

// insertNew inserts docs unordered into coll and returns how many were new:
// a document whose _id exists already is not an error (idempotent writes
// under redelivery), any other failure is, wrapped with what. On the
// embedded store it inserts gatedChunk documents per command.
func (s *Store) insertNew(ctx context.Context, coll *mongo.Collection, docs []any, what string) (int, error) {
	if s.wgate == nil || len(docs) <= gatedChunk {
		return s.insertChunk(ctx, coll, docs, what)
	}
	total := 0
	for len(docs) > 0 {
		n, err := s.insertChunk(ctx, coll, docs[:min(gatedChunk, len(docs))], what)
		total += n
		if err != nil {
			return total, err
		}
		docs = docs[min(gatedChunk, len(docs)):]
	}
	return total, nil
}

// insertChunk is insertNew in one InsertMany.
func (s *Store) insertChunk(ctx context.Context, coll *mongo.Collection, docs []any, what string) (int, error) {
	var res *mongo.InsertManyResult
	err := s.wgate.bulk(ctx, func() error { // messages and blocks: after the small writes of requests
		var err error
		res, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
	n := 0
	if res != nil {
		n = len(res.InsertedIDs)
	}
	if err == nil {
		return n, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && onlyDuplicateKeys(bwe) {
		return len(docs) - len(bwe.WriteErrors), nil
	}
	return n, fmt.Errorf("store: insert %s: %w", what, err)
}

// GetMessage returns one message by id.
func (s *Store) GetMessage(ctx context.Context, id string) (natter.Message, error) {
	var m natter.Message
	err := s.msgs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return m, fmt.Errorf("store: message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("store: get message: %w", err)
	}
	return m, nil
}

// MessagesRange returns messages of conv with from <= seq <= to, oldest
// first, at most limit. It reads with the history read preference; on
// MongoDB it is one index range scan on {conv, seq}.
func (s *Store) MessagesRange(ctx context.Context, conv string, from, to uint64, limit int) ([]natter.Message, error) {
	filter := bson.D{{Key: "conv", Value: conv}, {Key: "seq", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}}}
	opts := options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit))
	return s.findMessages(ctx, filter, opts)
}

// MessagesBefore returns the newest limit messages of conv with seq < before,
// oldest first.
func (s *Store) MessagesBefore(ctx context.Context, conv string, before uint64, limit int) ([]natter.Message, error) {
	filter := bson.D{{Key: "conv", Value: conv}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: before}}}}
	opts := options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(limit))
	msgs, err := s.findMessages(ctx, filter, opts)
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, err
}

func (s *Store) findMessages(ctx context.Context, filter bson.D, opts *options.FindOptions) ([]natter.Message, error) {
	cur, err := s.history.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("store: find messages: %w", err)
	}
	var msgs []natter.Message
	if err := cur.All(ctx, &msgs); err != nil {
		return nil, fmt.Errorf("store: read messages: %w", err)
	}
	return msgs, nil
}

// CountMessages counts stored messages of conv (operator tools and tests;
// not for hot paths).
func (s *Store) CountMessages(ctx context.Context, conv string) (int64, error) {
	filter := bson.D{}
	if conv != "" {
		filter = bson.D{{Key: "conv", Value: conv}}
	}
	n, err := s.msgs.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("store: count messages: %w", err)
	}
	return n, nil
}
