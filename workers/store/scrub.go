package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	natter "github.com/natter-im/natter"
)

// Scrubbing: a deleted message's text is removed from the archive, not
// hidden. The messages collection's document and the block holding it get
// an empty body; everything else of the message stays (its id, seq, sender,
// time), since the log still has an entry at that seq. Every write is by
// _id alone.

// Scrubbed is one message to scrub: its id and seq.
type Scrubbed struct {
	ID  string
	Seq uint64
}

// ScrubMessages empties the body of each of msgs of conv in the messages
// collection (one update by _id each) and in the archive's blocks that hold
// them (read and replaced by _id, when stored). It is idempotent. found
// reports whether each message's document was there: a message not stored
// yet is scrubbed by a later call (the persist role retries).
func (s *Store) ScrubMessages(ctx context.Context, conv string, msgs []Scrubbed) (found bool, err error) {
	found = true
	for _, m := range msgs {
		res, err := s.msgs.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "body", Value: ""}}}})
		if err != nil {
			return false, fmt.Errorf("store: scrub message %s: %w", m.ID, err)
		}
		if res.MatchedCount == 0 {
			found = false
		}
	}
	byBlock := map[uint64][]Scrubbed{}
	for _, m := range msgs {
		if m.Seq > 0 {
			byBlock[BlockOf(m.Seq)] = append(byBlock[BlockOf(m.Seq)], m)
		}
	}
	for k, ms := range byBlock {
		if err := s.scrubBlock(ctx, conv, k, ms); err != nil {
			return false, err
		}
	}
	return found, nil
}

// scrubBlock empties the bodies of msgs in block k of conv, if the block
// is stored.
func (s *Store) scrubBlock(ctx context.Context, conv string, k uint64, msgs []Scrubbed) error {
	id := blockID(conv, k)
	var d blockDoc
	err := s.blocks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: scrub block %s: %w", id, err)
	}
	var raws []json.RawMessage
	if d.C != "" || d.Msgs == nil {
		raws, err = decodeBlockText(conv, k, d.C)
	} else {
		raws, err = decodeBlock(d.Msgs)
	}
	if err != nil {
		return fmt.Errorf("store: scrub block %s: %w", id, err)
	}
	block := make([]natter.Message, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &block[i]); err != nil {
			return fmt.Errorf("store: scrub block %s: %w: %w", id, ErrBadBlock, err)
		}
	}
	first := BlockFirst(k)
	changed := false
	for _, m := range msgs {
		i := m.Seq - first
		if i < uint64(len(block)) && block[i].ID == m.ID && block[i].Body != "" {
			block[i].Body = ""
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if !validBlock(conv, k, block) {
		return fmt.Errorf("store: scrub block %s: %w", id, ErrBadBlock)
	}
	nd := blockDoc{ID: id, Conv: conv, First: int64(first), N: BlockSize, C: encodeBlockText(block)}
	if _, err := s.blocks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, nd); err != nil {
		return fmt.Errorf("store: scrub block %s: %w", id, err)
	}
	return nil
}
