package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	natter "github.com/natter-im/natter"
)

// The archive's blocks: the messages of a conversation in runs of BlockSize
// seqs, one document each, so that a page of the archive is a few lookups
// by _id whatever else the store holds (docs/design.md "The archive").
//
// Seqs are gap-free per conversation, so block k of conv holds exactly the
// seqs k*BlockSize+1 .. (k+1)*BlockSize and its _id is known before it is
// read: conv + "/" + the block's first seq in 20 digits. A block is written
// once, complete, and never changed (the log is append-only); writing it
// again is a duplicate key, which is success. The messages stay in the
// messages collection too (_id = message id, for lookups by id): a block is
// a second copy of BlockSize messages in one document.

// BlockSize is how many consecutive seqs one block holds.
const BlockSize = 64

// Block is one complete block: BlockSize messages of one conversation with
// the seqs K*BlockSize+1 .. (K+1)*BlockSize, in seq order.
type Block struct {
	Conv string
	K    uint64
	Msgs []natter.Message
}

// blockDoc is a block as stored. C holds its messages in the block codec
// (blockcodec.go): one string, so that the document costs the store one
// value to encode, store and decode instead of BlockSize subdocuments, and
// a page is cut from it without decoding it into messages. Msgs is the form
// before the codec (each message's JSON preceded by its length, a uvarint),
// still read.
type blockDoc struct {
	ID   string `bson:"_id"`
	Conv string `bson:"conv"`
	// First is the first seq of the block.
	First int64  `bson:"first"`
	N     int    `bson:"n"`
	C     string `bson:"c,omitempty"`
	Msgs  []byte `bson:"msgs,omitempty"`
}

// BlockOf is the block index of seq (seq >= 1).
func BlockOf(seq uint64) uint64 { return (seq - 1) / BlockSize }

// BlockFirst is the first seq of block k.
func BlockFirst(k uint64) uint64 { return k*BlockSize + 1 }

// blockID is the _id of block k of conv.
func blockID(conv string, k uint64) string {
	return fmt.Sprintf("%s/%020d", conv, BlockFirst(k))
}

// validBlock reports whether msgs are exactly block k of conv.
func validBlock(conv string, k uint64, msgs []natter.Message) bool {
	if len(msgs) != BlockSize {
		return false
	}
	first := BlockFirst(k)
	for i := range msgs {
		if msgs[i].Conv != conv || msgs[i].Seq != first+uint64(i) {
			return false
		}
	}
	return true
}

// InsertBlocks stores complete blocks with one unordered InsertMany. A block
// already stored (a redelivery, another writer) is not an error. It returns
// how many were new. A block that is not complete is an error.
func (s *Store) InsertBlocks(ctx context.Context, blocks []Block) (int, error) {
	if len(blocks) == 0 {
		return 0, nil
	}
	docs := make([]any, len(blocks))
	for i, b := range blocks {
		if !validBlock(b.Conv, b.K, b.Msgs) {
			return 0, fmt.Errorf("store: block %s: %w", blockID(b.Conv, b.K), ErrBadBlock)
		}
		docs[i] = blockDoc{ID: blockID(b.Conv, b.K), Conv: b.Conv, First: int64(BlockFirst(b.K)), N: BlockSize, C: encodeBlockText(b.Msgs)}
	}
	return s.insertNew(ctx, s.blocks, docs, "blocks")
}

// decodeBlock splits the Msgs of a blockDoc written before the block
// codec; it copies nothing.
func decodeBlock(raw []byte) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, BlockSize)
	for len(raw) > 0 {
		n, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			return nil, ErrBadBlock
		}
		out = append(out, raw[k:k+int(n):k+int(n)])
		raw = raw[k+int(n):]
	}
	if len(out) != BlockSize {
		return nil, ErrBadBlock
	}
	return out, nil
}

// archiveReaders bounds the block lookups of one ArchiveRange in flight.
const archiveReaders = 4

// ArchiveRange returns the messages of conv with from <= seq <= to, oldest
// first, read from the blocks that hold them: one lookup by _id per block,
// whatever else the store holds. ok is false when a block of the range is
// not stored (not written yet, or archived before blocks existed): the
// caller then reads the messages collection ([Store.MessagesRange]). It reads
// with the history read preference.
func (s *Store) ArchiveRange(ctx context.Context, conv string, from, to uint64) ([]natter.Message, bool, error) {
	raws, ok, err := s.ArchiveRangeJSON(ctx, conv, from, to)
	if !ok || err != nil {
		return nil, ok, err
	}
	msgs := make([]natter.Message, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &msgs[i]); err != nil {
			return nil, false, fmt.Errorf("store: decode archived message %s/%d: %w", conv, from+uint64(i), err)
		}
		if msgs[i].Conv != conv || msgs[i].Seq != from+uint64(i) {
			return nil, false, fmt.Errorf("store: archived message %s/%d: %w", conv, from+uint64(i), ErrBadBlock)
		}
	}
	return msgs, true, nil
}

// ArchiveRangeJSON is [Store.ArchiveRange] with each message's JSON as
// stored (natter.Message's encoding): element i is seq from+i.
func (s *Store) ArchiveRangeJSON(ctx context.Context, conv string, from, to uint64) ([]json.RawMessage, bool, error) {
	if from < 1 || to < from {
		return nil, true, nil
	}
	k0, k1 := BlockOf(from), BlockOf(to)
	blocks := make([][]json.RawMessage, k1-k0+1)
	errs := make([]error, len(blocks))
	read := func(i int) {
		blocks[i], errs[i] = s.readBlock(ctx, conv, k0+uint64(i))
	}
	if len(blocks) == 1 {
		read(0)
	} else {
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(archiveReaders, len(blocks)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					read(i)
				}
			}()
		}
		for i := range blocks {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	out := make([]json.RawMessage, 0, to-from+1)
	for i, b := range blocks {
		if b == nil {
			return nil, false, nil
		}
		first := BlockFirst(k0 + uint64(i))
		lo, hi := max(from, first)-first, min(to, first+BlockSize-1)-first
		out = append(out, b[lo:hi+1]...)
	}
	return out, true, nil
}

// readBlock reads block k of conv; nil when it is not stored.
func (s *Store) readBlock(ctx context.Context, conv string, k uint64) ([]json.RawMessage, error) {
	var d blockDoc
	id := blockID(conv, k)
	err := s.historyBlocks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read block %s: %w", id, err)
	}
	if d.Conv != conv || d.First != int64(BlockFirst(k)) || d.N != BlockSize {
		return nil, fmt.Errorf("store: block %s: %w", id, ErrBadBlock)
	}
	var msgs []json.RawMessage
	if d.C != "" || d.Msgs == nil {
		msgs, err = decodeBlockText(conv, k, d.C)
	} else {
		msgs, err = decodeBlock(d.Msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w", id, err)
	}
	return msgs, nil
}

// BlocksOf returns the complete blocks in msgs (messages of conv, oldest
// first, as read from the messages collection): those of which msgs hold
// every seq exactly once. A block with a seq stored twice (under two message
// ids) is left out.
func BlocksOf(conv string, msgs []natter.Message) []Block {
	var out []Block
	for i := 0; i < len(msgs); {
		k := BlockOf(msgs[i].Seq)
		j := i
		for j < len(msgs) && BlockOf(msgs[j].Seq) == k {
			j++
		}
		if validBlock(conv, k, msgs[i:j]) {
			out = append(out, Block{Conv: conv, K: k, Msgs: msgs[i:j:j]})
		}
		i = j
	}
	return out
}

// CountBlocks counts stored blocks of conv ("" all; operator tools and tests,
// not for hot paths).
func (s *Store) CountBlocks(ctx context.Context, conv string) (int64, error) {
	filter := bson.D{}
	if conv != "" {
		filter = bson.D{{Key: "conv", Value: conv}}
	}
	n, err := s.blocks.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("store: count blocks: %w", err)
	}
	return n, nil
}
