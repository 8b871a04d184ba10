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

// CreateConversation inserts c and adds it to every member's list. It returns
// ErrExists (wrapped) with the stored conversation when c.ID is taken, which
// makes creating a direct conversation idempotent.
func (s *Store) CreateConversation(ctx context.Context, c natter.Conversation) (natter.Conversation, error) {
	if c.Members == nil {
		c.Members = []string{}
	}
	_, err := s.convs.InsertOne(ctx, c)
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
// withMembers is set.
func (s *Store) GetConversation(ctx context.Context, id string, withMembers bool) (natter.Conversation, error) {
	var c natter.Conversation
	opts := options.FindOne()
	if !withMembers {
		opts.SetProjection(bson.D{{Key: "members", Value: 0}})
	}
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return c, fmt.Errorf("store: conversation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("store: get conversation: %w", err)
	}
	return c, nil
}

// AddMembers adds users to conversation id (already-members are no change).
func (s *Store) AddMembers(ctx context.Context, id string, users []string) error {
	res, err := s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "members", Value: bson.D{{Key: "$each", Value: users}}}}}})
	if err != nil {
		return fmt.Errorf("store: add members: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("store: conversation %s: %w", id, ErrNotFound)
	}
	return s.addToUsers(ctx, id, users)
}

// RemoveMembers removes users from conversation id.
func (s *Store) RemoveMembers(ctx context.Context, id string, users []string) error {
	res, err := s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pullAll", Value: bson.D{{Key: "members", Value: users}}}})
	if err != nil {
		return fmt.Errorf("store: remove members: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("store: conversation %s: %w", id, ErrNotFound)
	}
	// One UpdateMany, not one update per user: FerretDB scans the
	// collection per statement.
	_, err = s.users.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: users}}}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "convs", Value: id}}}})
	if err != nil {
		return fmt.Errorf("store: remove conversation from users: %w", err)
	}
	return nil
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
