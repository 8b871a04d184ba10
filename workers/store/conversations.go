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

// CreateConversation inserts c, with outbox written to the outbox collection
// before it (see [Pending]), and its memberships (members.go): a direct
// conversation keeps its two members in its document, a group's go to its
// member list. It returns ErrExists (wrapped) with the stored conversation
// when c.ID is taken, which makes creating a direct conversation
// idempotent; its memberships are completed then (a create cut short is
// completed by its retry, and two concurrent creates of one pair make one
// document), and outbox is not written.
//
// Direct conversations new to the store are created in batches with the
// other creates of this Store in flight (creates.go): their users' lists
// first, then the conversation documents, so that one cut short is listed
// but not there (list skips it) until its retry completes it.
func (s *Store) CreateConversation(ctx context.Context, c natter.Conversation, outbox ...Pending) (natter.Conversation, error) {
	if c.Members == nil {
		c.Members = []string{}
	}
	exists := false
	if c.Kind == natter.KindDirect {
		err := s.createBatched(ctx, c, outbox)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errTaken) {
			return c, err
		}
		exists = true
	}
	return s.createOne(ctx, c, outbox, exists)
}

// createOne is CreateConversation one at a time; exists says c.ID is known
// to be taken (no insert is tried).
func (s *Store) createOne(ctx context.Context, c natter.Conversation, outbox []Pending, exists bool) (natter.Conversation, error) {
	members := c.Members
	if !exists {
		if err := s.writeOutbox(ctx, outbox); err != nil {
			return c, err
		}
		err := s.wgate.do(ctx, func() error {
			_, err := s.convs.InsertOne(ctx, convDoc(c))
			return err
		})
		exists = mongo.IsDuplicateKeyError(err)
		if err != nil && !exists {
			return c, fmt.Errorf("store: create conversation: %w", err)
		}
	}
	if exists {
		have, gerr := s.GetConversation(ctx, c.ID, true)
		if gerr != nil {
			return c, gerr
		}
		if have.Kind != natter.KindDirect {
			return have, fmt.Errorf("store: conversation %s: %w", c.ID, ErrExists)
		}
		c, members = have, have.Members
	}
	if err := s.addMemberships(ctx, c, members, !exists); err != nil {
		return c, err
	}
	if exists {
		return c, fmt.Errorf("store: conversation %s: %w", c.ID, ErrExists)
	}
	return c, nil
}

// convDoc is the stored document of new conversation c.
func convDoc(c natter.Conversation) natter.Conversation {
	if c.Kind == natter.KindGroup {
		c.Members = nil // in the member list
	}
	return c
}

// writeOutbox writes the events of outbox to the outbox collection (those
// written already, by a retry or a concurrent create, stay as they are).
func (s *Store) writeOutbox(ctx context.Context, outbox []Pending) error {
	if len(outbox) == 0 {
		return nil
	}
	docs := make([]any, len(outbox))
	for i, p := range outbox {
		docs[i] = outboxDoc{ID: p.ID, Conv: p.Conv, At: p.At, Pending: p}
	}
	if err := s.insertIgnoringDups(ctx, s.outbox, docs); err != nil {
		return fmt.Errorf("store: write outbox: %w", err)
	}
	return nil
}

// addMemberships writes the memberships of conversation c: members (fresh:
// c was just inserted). A direct conversation's memberships are its own
// document's members and the users' lists.
func (s *Store) addMemberships(ctx context.Context, c natter.Conversation, members []string, fresh bool) error {
	if c.Kind == natter.KindGroup {
		return s.locked(ctx, []string{"m/" + c.ID}, func(ctx context.Context) error {
			if _, err := s.addLocked(ctx, c.ID, members, 0, nil, false, nil); err != nil {
				return fmt.Errorf("store: add members: %w", err)
			}
			return nil
		})
	}
	return s.userListsEdit(ctx, c.ID, members, true, fresh)
}

// GetConversation returns conversation id, with its member list when
// withMembers is set (a group's: 1 + n/MemberChunk lookups). Its outbox is
// never read. Name is the name the conversation was created with and Rev is
// not set: [Store.ConversationSummary] reads a renamed group's name and
// the rev.
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
	c.Rev = 0 // a legacy document's counter, not the head's
	if withMembers && c.Kind == natter.KindGroup {
		if c.Members, err = s.groupMembers(ctx, id); err != nil {
			return c, err
		}
	}
	return c, nil
}

// RenameGroup renames group conv to name under the group's lock (the lock
// of its member changes, so that renames and member changes share one rev):
// with ev set its event goes to the outbox first, then the head takes the
// name and the next rev in one write. Renaming to the name it has is no
// change (no event, the rev stays). A rename cut short after its event was
// written is completed by its retry (the same rev, so the same event id).
func (s *Store) RenameGroup(ctx context.Context, conv, name string, ev EventFunc) (Change, error) {
	var ch Change
	err := s.locked(ctx, []string{"m/" + conv}, func(ctx context.Context) error {
		var err error
		ch, err = s.renameLocked(ctx, conv, name, ev)
		return err
	})
	return ch, err
}

// renameLocked is RenameGroup under the group's lock.
func (s *Store) renameLocked(ctx context.Context, conv, name string, ev EventFunc) (Change, error) {
	h, _, err := s.head(ctx, conv)
	if err != nil {
		return Change{}, err
	}
	h.ID = conv
	have := h.Name
	if have == nil {
		c, err := s.GetConversation(ctx, conv, false)
		if err != nil {
			return Change{}, err
		}
		have = &c.Name
	}
	if *have == name {
		return Change{Rev: h.Rev, Count: h.Count}, nil
	}
	rev := h.Rev + 1
	if err := s.writeEvent(ctx, ev, rev, nil); err != nil {
		return Change{}, fmt.Errorf("store: rename: %w", err)
	}
	h.Rev, h.Name = rev, &name
	if err := s.replace(ctx, s.mlists, conv, h); err != nil {
		return Change{}, fmt.Errorf("store: rename: write member head: %w", err)
	}
	return Change{Changed: true, Rev: rev, Count: h.Count}, nil
}

// ConversationSummary returns conversation id with its MemberCount, its
// Rev, and its members when there are at most inline of them: a direct
// conversation's are in its document (and its rev is 0), a group's count,
// rev and name (once renamed) are in the head of its member list and its
// members in 1 + count/MemberChunk more lookups.
func (s *Store) ConversationSummary(ctx context.Context, id string, inline int) (natter.Conversation, error) {
	var c natter.Conversation
	opts := options.FindOne().SetProjection(bson.D{{Key: "outbox", Value: 0}})
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return c, fmt.Errorf("store: conversation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("store: get conversation: %w", err)
	}
	if c.Kind != natter.KindGroup {
		c.MemberCount, c.Rev = len(c.Members), 0
		return c, nil
	}
	c.Members = nil
	h, _, err := s.head(ctx, id)
	if err != nil {
		return c, err
	}
	c.MemberCount, c.Rev = h.Count, h.Rev
	h.fill(&c)
	if h.Name != nil {
		c.Name = *h.Name
	}
	if h.Count <= inline {
		if c.Members, err = s.groupMembers(ctx, id); err != nil {
			return c, err
		}
		c.MemberCount = len(c.Members)
	}
	return c, nil
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

// SetReadCursor moves user's read cursor in conv forward to seq (never back).
func (s *Store) SetReadCursor(ctx context.Context, user, conv string, seq uint64) error {
	err := s.wgate.do(ctx, func() error {
		_, err := s.cursors.UpdateOne(ctx, bson.D{{Key: "_id", Value: user + "|" + conv}},
			bson.D{
				{Key: "$max", Value: bson.D{{Key: "read", Value: seq}}},
				{Key: "$setOnInsert", Value: bson.D{{Key: "user", Value: user}, {Key: "conv", Value: conv}}},
			},
			options.Update().SetUpsert(true))
		return err
	})
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
