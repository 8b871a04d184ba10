package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// MaxBlocks is the most users one user blocks.
const MaxBlocks = 1000

// ErrTooMany is a block that would take a user past MaxBlocks.
var ErrTooMany = errors.New("blocks: too many blocked users")

// casRetries bounds the compare-and-set attempts of one update.
const casRetries = 10

// Bucket is the blocks of every user in the PRESENCE bucket.
type Bucket struct {
	kv jetstream.KeyValue
}

// Open returns the blocks of the PRESENCE bucket (which must exist).
func Open(ctx context.Context, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("blocks: bucket: %w", err)
	}
	return &Bucket{kv: kv}, nil
}

// Decode returns the users of a block.<user> value, sorted.
func Decode(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), ",")
}

func encode(users []string) []byte { return []byte(strings.Join(users, ",")) }

// Get returns the users user blocks, sorted (nil for none).
func (b *Bucket) Get(ctx context.Context, user string) ([]string, error) {
	users, _, err := b.get(ctx, user)
	return users, err
}

func (b *Bucket) get(ctx context.Context, user string) ([]string, uint64, error) {
	e, err := b.kv.Get(ctx, subjects.PresenceBlockKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blocks: get %s: %w", user, err)
	}
	return Decode(e.Value()), e.Revision(), nil
}

// Update adds (block) or removes users from user's blocks, with a
// compare-and-set on the key's revision (retried on a concurrent change),
// and returns the blocks after it and whether they changed.
func (b *Bucket) Update(ctx context.Context, user string, users []string, block bool) ([]string, bool, error) {
	for range casRetries {
		have, rev, err := b.get(ctx, user)
		if err != nil {
			return nil, false, err
		}
		next := slices.Clone(have)
		if block {
			next = append(next, users...)
			slices.Sort(next)
			next = slices.Compact(next)
			if len(next) > MaxBlocks {
				return have, false, fmt.Errorf("%w: %d, at most %d", ErrTooMany, len(next), MaxBlocks)
			}
		} else {
			next = slices.DeleteFunc(next, func(u string) bool { return slices.Contains(users, u) })
		}
		if slices.Equal(next, have) {
			return have, false, nil
		}
		key := subjects.PresenceBlockKey(user)
		if rev == 0 {
			_, err = b.kv.Create(ctx, key, encode(next))
		} else {
			_, err = b.kv.Update(ctx, key, encode(next), rev)
		}
		if err == nil {
			return next, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSeq(err) {
			return nil, false, fmt.Errorf("blocks: write %s: %w", user, err)
		}
	}
	return nil, false, fmt.Errorf("blocks: write %s: still changing after %d attempts", user, casRetries)
}

func isWrongSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Event is the message on a user's presence subject (subjects.Presence)
// that tells the edges watching the user's presence the user's blocks
// after a change.
type Event struct {
	Blocks []string `json:"blocks"`
}

// EventBody returns the body of the Event of blocks.
func EventBody(blocks []string) []byte {
	if blocks == nil {
		blocks = []string{}
	}
	b, _ := json.Marshal(Event{Blocks: blocks})
	return b
}
