package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	natter "github.com/natter-im/natter"
)

// migrateMembers moves the memberships of a store written before the
// membership documents (members.go) into them, at Open: a group's "members"
// array in its conversation document and a user's "convs" array in the users
// collection. Each one moved is removed after its documents are written, so
// a migration cut short goes on at the next Open, and a migrated store finds
// nothing: one query of each collection (on FerretDB, a scan).
func (s *Store) migrateMembers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	cur, err := s.convs.Find(ctx, bson.D{{Key: "kind", Value: natter.KindGroup},
		{Key: "members", Value: bson.D{{Key: "$type", Value: "array"}}}})
	if err != nil {
		return fmt.Errorf("store: migrate: find groups: %w", err)
	}
	var groups []natter.Conversation
	if err := cur.All(ctx, &groups); err != nil {
		return fmt.Errorf("store: migrate: read groups: %w", err)
	}
	for _, g := range groups {
		if err := s.migrateGroup(ctx, g); err != nil {
			return err
		}
	}
	cur, err = s.users.Find(ctx, bson.D{{Key: "convs", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return fmt.Errorf("store: migrate: find users: %w", err)
	}
	var users []struct {
		ID    string   `bson:"_id"`
		Convs []string `bson:"convs"`
	}
	if err := cur.All(ctx, &users); err != nil {
		return fmt.Errorf("store: migrate: read users: %w", err)
	}
	for _, u := range users {
		for _, conv := range u.Convs {
			if natter.IsGroupID(conv) { // a direct one lists its members itself
				docs := []any{memberDoc{ID: memberID(conv, u.ID), Conv: conv, User: u.ID}}
				if err := s.insertIgnoringDups(ctx, s.members, docs); err != nil {
					return fmt.Errorf("store: migrate: memberships of %s: %w", u.ID, err)
				}
			}
			if err := s.userListsEdit(ctx, conv, []string{u.ID}, true, false); err != nil {
				return fmt.Errorf("store: migrate: list of %s: %w", u.ID, err)
			}
		}
		if _, err := s.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: u.ID}}); err != nil {
			return fmt.Errorf("store: migrate: user %s: %w", u.ID, err)
		}
	}
	return nil
}

// migrateGroup writes the member list of legacy group g, its head's rev
// continuing from g.Rev (event ids stay unique), then removes its array.
func (s *Store) migrateGroup(ctx context.Context, g natter.Conversation) error {
	return s.locked(ctx, []string{"m/" + g.ID}, func(ctx context.Context) error {
		return s.migrateGroupLocked(ctx, g)
	})
}

func (s *Store) migrateGroupLocked(ctx context.Context, g natter.Conversation) error {
	if _, ok, err := s.head(ctx, g.ID); err != nil {
		return err
	} else if !ok {
		if err := s.replace(ctx, s.mlists, g.ID, listHead{ID: g.ID, Rev: g.Rev}); err != nil {
			return fmt.Errorf("store: migrate: head of %s: %w", g.ID, err)
		}
	}
	for i := 0; i < len(g.Members); i += MemberChunk {
		if _, err := s.addLocked(ctx, g.ID, g.Members[i:min(i+MemberChunk, len(g.Members))], 0, nil, true, nil); err != nil {
			return fmt.Errorf("store: migrate: members of %s: %w", g.ID, err)
		}
	}
	_, err := s.convs.UpdateOne(ctx, bson.D{{Key: "_id", Value: g.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: nil}}}})
	if err != nil && err != mongo.ErrNoDocuments {
		return fmt.Errorf("store: migrate: group %s: %w", g.ID, err)
	}
	return nil
}
