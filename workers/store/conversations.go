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

// CreateConversation inserts c, with outbox in its outbox (see [Pending]) in
// the same write, and adds it to every member's list. It returns ErrExists
// (wrapped) with the stored conversation when c.ID is taken, which makes
// creating a direct conversation idempotent; outbox is not written then.
func (s *Store) CreateConversation(ctx context.Context, c natter.Conversation, outbox ...Pending) (natter.Conversation, error) {
	if c.Members == nil {
		c.Members = []string{}
	}
	doc := struct {
		natter.Conversation `bson:",inline"`
		Outbox              []Pending `bson:"outbox,omitempty"`
	}{c, outbox}
	_, err := s.convs.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		have, gerr := s.GetConversation(ctx, c.ID, true)
		if gerr != nil {
			return c, gerr
		}
		return have, fmt.Errorf("store: conversation %s: %w", c.ID, ErrExists)
	}
	if err != nil {
		return c, fmt.Errorf("store: create conversation: %w", err)
	}
	if err := s.addToUsers(ctx, c.ID, c.Members); err != nil {
		return c, err
	}
	return c, nil
}

// GetConversation returns conversation id, with its member list when
// withMembers is set. Its outbox is never read.
func (s *Store) GetConversation(ctx context.Context, id string, withMembers bool) (natter.Conversation, error) {
	var c natter.Conversation
	proj := bson.D{{Key: "outbox", Value: 0}}
	if !withMembers {
		proj = append(proj, bson.E{Key: "members", Value: 0})
	}
	opts := options.FindOne().SetProjection(proj)
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return c, fmt.Errorf("store: conversation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("store: get conversation: %w", err)
	}
	return c, nil
}

// Change makes a member change conditional and reports it. With an empty
// Outbox the change is unconditional. Otherwise it applies only while the
// conversation's Rev is still Rev (else [ErrConflict]), and the same
// single-document update increments Rev and pushes Outbox into the
// conversation's outbox: the change and its events are written together.
type Change struct {
	Rev    int64
	Outbox []Pending
}

// AddMembers adds users to conversation id (already-members are no change),
// as ch says (see [Change]).
func (s *Store) AddMembers(ctx context.Context, id string, users []string, ch Change) error {
	op := bson.E{Key: "$addToSet", Value: bson.D{{Key: "members", Value: bson.D{{Key: "$each", Value: users}}}}}
	if err := s.changeMembers(ctx, id, op, ch); err != nil {
		return fmt.Errorf("store: add members: %w", err)
	}
	return s.addToUsers(ctx, id, users)
}

// RemoveMembers removes users from conversation id, as ch says (see
// [Change]).
func (s *Store) RemoveMembers(ctx context.Context, id string, users []string, ch Change) error {
	op := bson.E{Key: "$pullAll", Value: bson.D{{Key: "members", Value: users}}}
	if err := s.changeMembers(ctx, id, op, ch); err != nil {
		return fmt.Errorf("store: remove members: %w", err)
	}
	// One UpdateMany, not one update per user: FerretDB scans the
	// collection per statement.
	_, err := s.users.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: users}}}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "convs", Value: id}}}})
	if err != nil {
		return fmt.Errorf("store: remove conversation from users: %w", err)
	}
	return nil
}

// changeMembers runs op on conversation id's document, conditional on
// ch.Rev and with ch.Outbox pushed when ch.Outbox is not empty.
func (s *Store) changeMembers(ctx context.Context, id string, op bson.E, ch Change) error {
	filter := bson.D{{Key: "_id", Value: id}}
	update := bson.D{op}
	if len(ch.Outbox) > 0 {
		rev := bson.E{Key: "rev", Value: ch.Rev}
		if ch.Rev == 0 { // never changed: no rev stored (omitempty)
			rev.Value = bson.D{{Key: "$exists", Value: false}}
		}
		filter = append(filter, rev)
		update = append(update,
			bson.E{Key: "$inc", Value: bson.D{{Key: "rev", Value: int64(1)}}},
			bson.E{Key: "$push", Value: bson.D{{Key: "outbox", Value: bson.D{{Key: "$each", Value: ch.Outbox}}}}})
	}
	res, err := s.convs.UpdateOne(ctx, filter, update)
	if err != nil {
		return err
	}
	if res.MatchedCount > 0 {
		return nil
	}
	if len(ch.Outbox) > 0 {
		n, err := s.convs.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}}, options.Count().SetLimit(1))
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("conversation %s: %w", id, ErrConflict)
		}
	}
	return fmt.Errorf("conversation %s: %w", id, ErrNotFound)
}

// addToUsers adds conversation id to every user's list with two statements
// whatever the number of users: an unordered InsertMany of the missing user
// documents (existing ones are duplicate keys, ignored) and one UpdateMany.
// Per-user upserts would cost one collection scan each on FerretDB.
func (s *Store) addToUsers(ctx context.Context, id string, users []string) error {
	if len(users) == 0 {
		return nil
	}
	docs := make([]any, len(users))
	for i, u := range users {
		docs[i] = bson.D{{Key: "_id", Value: u}, {Key: "convs", Value: bson.A{}}}
	}
	_, err := s.users.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err != nil && !(errors.As(err, &bwe) && onlyDuplicateKeys(bwe)) {
		return fmt.Errorf("store: create users: %w", err)
	}
	_, err = s.users.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: users}}}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "convs", Value: id}}}})
	if err != nil {
		return fmt.Errorf("store: add conversation to users: %w", err)
	}
	return nil
}

func onlyDuplicateKeys(bwe mongo.BulkWriteException) bool {
	if bwe.WriteConcernError != nil {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// UserConversations returns the ids of the conversations user is in.
func (s *Store) UserConversations(ctx context.Context, user string) ([]string, error) {
	var doc struct {
		Convs []string `bson:"convs"`
	}
	err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: user}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: user conversations: %w", err)
	}
	if doc.Convs == nil {
		doc.Convs = []string{}
	}
	return doc.Convs, nil
}

// SetReadCursor moves user's read cursor in conv forward to seq (never back).
func (s *Store) SetReadCursor(ctx context.Context, user, conv string, seq uint64) error {
	_, err := s.cursors.UpdateOne(ctx, bson.D{{Key: "_id", Value: user + "|" + conv}},
		bson.D{
			{Key: "$max", Value: bson.D{{Key: "read", Value: seq}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "user", Value: user}, {Key: "conv", Value: conv}}},
		},
		options.Update().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: set read cursor: %w", err)
	}
	return nil
}

// ReadCursor returns user's read cursor in conv (0 if none).
func (s *Store) ReadCursor(ctx context.Context, user, conv string) (uint64, error) {
	var doc struct {
		Read uint64 `bson:"read"`
	}
	err := s.cursors.FindOne(ctx, bson.D{{Key: "_id", Value: user + "|" + conv}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read cursor: %w", err)
	}
	return doc.Read, nil
}
