package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Reactions: the counts per emoji live in the message's record
// (Record.Reactions, a few bytes per emoji: at most MaxReactions of them),
// and each user's own reactions to the message in a key of their own
// (subjects.ActionsUserKey), which makes adding and removing idempotent
// per user, message and emoji without a list of users in the message's
// record: a reaction rewrites two small values, whatever the group's size.
// A page reads the user's keys with the records (one more filter per 64
// seqs in the same batched read) to mark Mine.

// MaxReactions is the most distinct emoji on one message (the edge's
// bound; an add past it is refused).
const MaxReactions = 20

// ErrTooManyReactions is an add of an emoji that would take a message past
// MaxReactions distinct ones.
var ErrTooManyReactions = errors.New("actions: too many distinct reactions")

// Count is one emoji's count in a record.
type Count struct {
	Emoji string `json:"e"`
	N     int    `json:"n"`
}

// userRecord is a user's reactions to one message.
type userRecord struct {
	Emojis []string `json:"emojis"`
}

// React adds (add) or removes user's reaction emoji to target. changed is
// false when it was already so (an add of a reaction the user has, a
// remove of one they have not): nothing is written. count is the emoji's
// count after it; rev the revision of the user's key after the change (an
// id for the change's event). The user's key is written first, then the
// count: an edge that fails between the two leaves the count one short
// (an add) or over (a remove) until that user's next change of it.
func (b *Bucket) React(ctx context.Context, target natter.Message, user, emoji string, add bool) (changed bool, count int, rev uint64, err error) {
	conv, seq := target.Conv, target.Seq
	if add {
		r, _, err := b.get(ctx, subjects.ActionsKey(conv, seq))
		if err != nil {
			return false, 0, 0, err
		}
		if countOf(r.Reactions, emoji) == 0 && len(r.Reactions) >= MaxReactions {
			if mine, _, err := b.getUser(ctx, conv, seq, user); err != nil || !slices.Contains(mine.Emojis, emoji) {
				return false, 0, 0, errors.Join(ErrTooManyReactions, err)
			}
		}
	}
	ukey := subjects.ActionsUserKey(conv, seq, user)
	changed, rev, err = casUser(ctx, b, ukey, func(u *userRecord) bool {
		i := slices.Index(u.Emojis, emoji)
		switch {
		case add && i < 0:
			u.Emojis = append(u.Emojis, emoji)
		case !add && i >= 0:
			u.Emojis = slices.Delete(u.Emojis, i, i+1)
		default:
			return false
		}
		return true
	})
	if err != nil {
		return false, 0, 0, err
	}
	if !changed {
		r, _, err := b.get(ctx, subjects.ActionsKey(conv, seq))
		return false, countOf(r.Reactions, emoji), rev, err
	}
	r, err := b.update(ctx, conv, seq, target.ID, func(r *Record) bool {
		i := slices.IndexFunc(r.Reactions, func(c Count) bool { return c.Emoji == emoji })
		switch {
		case add && i < 0:
			r.Reactions = append(r.Reactions, Count{Emoji: emoji, N: 1})
		case add:
			r.Reactions[i].N++
		case i < 0:
			return false
		case r.Reactions[i].N <= 1:
			r.Reactions = slices.Delete(r.Reactions, i, i+1)
		default:
			r.Reactions[i].N--
		}
		return true
	})
	if err != nil {
		return true, 0, rev, err
	}
	return true, countOf(r.Reactions, emoji), rev, nil
}

func countOf(cs []Count, emoji string) int {
	for _, c := range cs {
		if c.Emoji == emoji {
			return c.N
		}
	}
	return 0
}

func (b *Bucket) getUser(ctx context.Context, conv string, seq uint64, user string) (userRecord, uint64, error) {
	return getJSON[userRecord](ctx, b.kv, subjects.ActionsUserKey(conv, seq, user))
}

func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, fmt.Errorf("actions: get %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("actions: get %s: %w: %w", key, ErrCorrupt, err)
	}
	return v, e.Revision(), nil
}

// casUser applies fn to the user record of key and writes it when fn
// reports a change; rev is the key's revision after it.
func casUser(ctx context.Context, b *Bucket, key string, fn func(*userRecord) bool) (changed bool, rev uint64, err error) {
	for attempt := range updateAttempts {
		u, rev, err := getJSON[userRecord](ctx, b.kv, key)
		if err != nil {
			return false, 0, err
		}
		if !fn(&u) {
			return false, rev, nil
		}
		val, err := json.Marshal(u)
		if err != nil {
			return false, 0, err
		}
		nrev, retry, err := write(ctx, b.kv, key, val, rev, attempt)
		if !retry {
			return err == nil, nrev, err
		}
	}
	return false, 0, fmt.Errorf("%w: %s after %d attempts", ErrConflict, key, updateAttempts)
}
