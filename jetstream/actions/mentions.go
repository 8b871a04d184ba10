package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MentionKeep is the most seqs one mention key keeps (the newest): a
// mention count is at most MentionKeep (clients show "99+" above 99).
const MentionKeep = 100

// AddMention records seq in the mention key (subjects.ActionsMentionKey or
// subjects.ActionsMentionAllKey): the key keeps its newest MentionKeep
// seqs, sorted. It is idempotent, so a retried send records it once.
func (b *Bucket) AddMention(ctx context.Context, key string, seq uint64) error {
	for attempt := range updateAttempts {
		seqs, rev, err := getJSON[[]uint64](ctx, b.kv, key)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearch(seqs, seq)
		if found || (len(seqs) >= MentionKeep && i == 0) {
			return nil // recorded, or older than every kept seq
		}
		seqs = slices.Insert(seqs, i, seq)
		if len(seqs) > MentionKeep {
			seqs = seqs[len(seqs)-MentionKeep:]
		}
		val, err := json.Marshal(seqs)
		if err != nil {
			return err
		}
		if _, retry, err := write(ctx, b.kv, key, val, rev, attempt); !retry {
			return err
		}
	}
	return fmt.Errorf("%w: %s after %d attempts", ErrConflict, key, updateAttempts)
}

// mentionKeysPerGet is the most keys MentionSeqs reads with one batched
// direct get (the server answers at most 1,024 subjects per request).
const mentionKeysPerGet = 1024

// MentionSeqs returns the seqs of each of keys (mention keys) that has
// some, ascending: one batched direct get per 1,024 keys.
func (b *Bucket) MentionSeqs(ctx context.Context, keys []string) (map[string][]uint64, error) {
	out := make(map[string][]uint64)
	var bad error
	for i := 0; i < len(keys); i += mentionKeysPerGet {
		part := keys[i:min(i+mentionKeysPerGet, len(keys))]
		filters := make([]string, len(part))
		for j, k := range part {
			filters[j] = b.prefix + k
		}
		err := b.multiLast(ctx, filters, func(m *nats.Msg) {
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				return
			}
			key := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), b.prefix)
			var seqs []uint64
			if err := json.Unmarshal(m.Data, &seqs); err != nil {
				bad = fmt.Errorf("actions: mentions %s: %w: %w", key, ErrCorrupt, err)
				return
			}
			out[key] = seqs
		})
		if err != nil {
			return nil, fmt.Errorf("actions: mentions: %w", err)
		}
	}
	return out, bad
}

// MentionCount is how many of seqs (ascending) are above read.
func MentionCount(seqs []uint64, read uint64) uint64 {
	i, found := slices.BinarySearch(seqs, read)
	if found {
		i++
	}
	return uint64(len(seqs) - i)
}
