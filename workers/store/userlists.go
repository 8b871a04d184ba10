package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// A user's conversation list is spread over UserBuckets buckets by a hash
// of the conversation. A bucket is its open part, the document _id
// user+"#"+b, which takes the conversations added to the bucket, and the
// parts sealed before it, _id user+"#"+b+"."+k for k below the open part's
// sealed count. An open part that holds ListChunk ids when one more comes is
// sealed: written as the next sealed part (a replace, so that a seal cut
// short and repeated writes the same part), then rewritten with the new id
// alone and the count one higher. So adding a conversation reads and
// rewrites at most ListChunk ids, whatever the user already has (before,
// one bucket of ~160 ids at 10,000 conversations was rewritten: the create
// cost grew with the list), and listing is the open parts, then the sealed
// parts they name.
//
// Every change of a bucket that exists is made under the bucket's lease
// lock (locks.go); a bucket that does not exist yet is written by an insert
// without a lock (an insert of a missing _id is atomic, and a locked writer
// that finds the open part missing inserts too). A conversation is listed
// at most once, except that a create completing one cut short (whose list
// writes were done) may list it again in the open part if its first entry
// was sealed meanwhile: listing drops repeats, a removal removes them all.

// UserBuckets is the number of buckets of a user's conversation list.
const UserBuckets = 64

// ListChunk is the most conversations the open part of a bucket holds.
const ListChunk = 32

// bucketDoc is the open part of a bucket; a sealed part is an idList.
type bucketDoc struct {
	ID  string   `bson:"_id"`
	IDs []string `bson:"ids"`
	// Sealed is the number of sealed parts: _id ID+".0" up to
	// ID+"."+(Sealed-1).
	Sealed int `bson:"sealed,omitempty"`
}

func bucketID(user, conv string) string {
	h := fnv.New32a()
	h.Write([]byte(conv))
	return user + "#" + strconv.Itoa(int(h.Sum32()%UserBuckets))
}

func sealedID(bucket string, k int) string { return bucket + "." + strconv.Itoa(k) }

// bucket is a bucket as read: its open part (found says it exists) and,
// when asked for, its sealed parts.
type bucket struct {
	open   bucketDoc
	found  bool
	sealed [][]string
}

// has reports whether the bucket lists conv.
func (b *bucket) has(conv string) bool {
	if slices.Contains(b.open.IDs, conv) {
		return true
	}
	for _, ids := range b.sealed {
		if slices.Contains(ids, conv) {
			return true
		}
	}
	return false
}

// readBuckets reads the open parts of the buckets ids and, with sealed set,
// their sealed parts: one or two lookups of many _ids (lookups.go).
func (s *Store) readBuckets(ctx context.Context, ids []string, sealed bool) ([]bucket, error) {
	if s.direct != nil {
		out, err := s.readBucketsDirect(ctx, ids, sealed)
		if err == nil || ctx.Err() != nil {
			return out, err
		}
	}
	if s.inFinds {
		return s.readBucketsIn(ctx, ids, sealed)
	}
	out := make([]bucket, len(ids))
	err := forEach(len(ids), func(i int) error {
		var err error
		out[i].found, err = findByID(ctx, s.ulists, ids[i], &out[i].open)
		return err
	})
	if err != nil || !sealed {
		return out, err
	}
	type part struct{ b, k int }
	var parts []part
	for i := range out {
		out[i].sealed = make([][]string, out[i].open.Sealed)
		for k := range out[i].open.Sealed {
			parts = append(parts, part{i, k})
		}
	}
	err = forEach(len(parts), func(j int) error {
		p := parts[j]
		var l idList
		_, err := findByID(ctx, s.ulists, sealedID(ids[p.b], p.k), &l)
		out[p.b].sealed[p.k] = l.IDs
		return err
	})
	return out, err
}

// readBucketsIn is readBuckets by $in finds: the open parts, then their
// sealed parts.
func (s *Store) readBucketsIn(ctx context.Context, ids []string, sealed bool) ([]bucket, error) {
	open, err := findIn(ctx, s.ulists, ids, func(d *bucketDoc) string { return d.ID })
	if err != nil {
		return nil, err
	}
	out := make([]bucket, len(ids))
	var parts []string
	for i, bid := range ids {
		d, ok := open[bid]
		if !ok {
			continue
		}
		out[i] = bucket{open: *d, found: true}
		if !sealed {
			continue
		}
		out[i].sealed = make([][]string, d.Sealed)
		for k := range d.Sealed {
			parts = append(parts, sealedID(bid, k))
		}
	}
	got, err := findIn(ctx, s.ulists, parts, func(l *idList) string { return l.ID })
	if err != nil {
		return nil, err
	}
	for i, bid := range ids {
		for k := range out[i].sealed {
			if l, ok := got[sealedID(bid, k)]; ok {
				out[i].sealed[k] = l.IDs
			}
		}
	}
	return out, nil
}

// userListsEdit adds conv to (or removes it from) the lists of users (see
// editBuckets).
func (s *Store) userListsEdit(ctx context.Context, conv string, users []string, add, fresh bool) error {
	edits := make(bucketEdits, len(users))
	for _, u := range users {
		id := bucketID(u, conv)
		edits[id] = append(edits[id], conv)
	}
	return s.editBuckets(ctx, edits, add, fresh)
}

// bucketEdits maps the _id of a bucket to the conversations to add to (or
// remove from) it.
type bucketEdits map[string][]string

// editBuckets adds the conversations of edits to (or removes them from)
// their buckets. It reads the buckets first and locks and changes only
// those that need the change, so that repeating a change costs reads only;
// with fresh set (an add that surely changes every bucket: its
// conversations are new to all of them) it skips the first reads and reads
// only the open parts under the lock. The writes of each step go in one
// statement, whatever the number of buckets.
func (s *Store) editBuckets(ctx context.Context, edits bucketEdits, add, fresh bool) error {
	if len(edits) == 0 {
		return nil
	}
	fresh = fresh && add
	ids := make([]string, 0, len(edits))
	for id := range edits {
		edits[id] = dedup(edits[id])
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if fresh {
		// The buckets that do not exist yet, in one insert without a lock;
		// those that exist go the locked way.
		docs := make([]any, len(ids))
		for i, id := range ids {
			docs[i] = bucketDoc{ID: id, IDs: edits[id]}
		}
		dups, err := s.insertDups(ctx, s.ulists, docs)
		if err != nil {
			return fmt.Errorf("store: write user lists: %w", err)
		}
		var rest []string
		for i, id := range ids {
			if dups[i] {
				rest = append(rest, id)
			}
		}
		ids = rest
	} else {
		have, err := s.readBuckets(ctx, ids, true)
		if err != nil {
			return fmt.Errorf("store: read user lists: %w", err)
		}
		var todo []string
		for i, id := range ids {
			for _, conv := range edits[id] {
				if have[i].has(conv) != add {
					todo = append(todo, id)
					break
				}
			}
		}
		ids = todo
	}
	if len(ids) == 0 {
		return nil
	}
	locks := make([]string, len(ids))
	for i, id := range ids {
		locks[i] = "u/" + id
	}
	return s.locked(ctx, locks, func(ctx context.Context) error {
		for len(ids) > 0 {
			var err error
			if ids, err = s.writeBuckets(ctx, ids, edits, add, fresh); err != nil {
				return fmt.Errorf("store: write user lists: %w", err)
			}
		}
		return nil
	})
}

// writeBuckets reads the buckets ids, whose locks the caller holds (their
// open parts only for a fresh add), and writes those the edits change: the
// sealed parts, then the open parts that exist in one bulk write, then the
// missing ones by one insert. It returns those whose insert found them
// existing (a lock-free insert came first): write them again.
func (s *Store) writeBuckets(ctx context.Context, ids []string, edits bucketEdits, add, fresh bool) ([]string, error) {
	have, err := s.readBuckets(ctx, ids, !fresh)
	if err != nil {
		return nil, err
	}
	var (
		seals, opens []mongo.WriteModel
		inserts      []any
		missing      []string
	)
	replace := func(id string, doc any) mongo.WriteModel {
		return mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(doc).SetUpsert(true)
	}
	for i, id := range ids {
		b := &have[i]
		open := b.open
		open.ID = id
		if add {
			var edit []string
			for _, conv := range edits[id] {
				if !b.has(conv) {
					edit = append(edit, conv)
				}
			}
			if len(edit) == 0 {
				continue
			}
			if len(open.IDs) >= ListChunk {
				seals = append(seals, replace(sealedID(id, open.Sealed), idList{ID: sealedID(id, open.Sealed), IDs: open.IDs}))
				open.IDs, open.Sealed = nil, open.Sealed+1
			}
			open.IDs = append(slices.Clip(open.IDs), edit...)
		} else {
			for k, part := range b.sealed {
				if out, changed := editIDs(part, edits[id], false); changed {
					seals = append(seals, replace(sealedID(id, k), idList{ID: sealedID(id, k), IDs: out}))
				}
			}
			out, changed := editIDs(open.IDs, edits[id], false)
			if !changed {
				continue
			}
			open.IDs = out
		}
		if b.found {
			opens = append(opens, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(open))
		} else {
			inserts = append(inserts, open)
			missing = append(missing, id)
		}
	}
	for _, models := range [][]mongo.WriteModel{seals, opens} {
		if len(models) > 0 {
			err := s.wgate.do(ctx, func() error {
				_, err := s.ulists.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
				return err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	if len(inserts) == 0 {
		return nil, nil
	}
	dups, err := s.insertDups(ctx, s.ulists, inserts)
	if err != nil {
		return nil, err
	}
	var again []string
	for i := range dups {
		again = append(again, missing[i])
	}
	return again, nil
}

// UserConversations returns the ids of the conversations user is in,
// sorted: UserBuckets lookups, then one per sealed part (~n/ListChunk); on
// the embedded store run by this process (Config.SQLiteDir), two SQL
// statements.
func (s *Store) UserConversations(ctx context.Context, user string) ([]string, error) {
	ids := make([]string, UserBuckets)
	for b := range ids {
		ids[b] = user + "#" + strconv.Itoa(b)
	}
	have, err := s.readBuckets(ctx, ids, true)
	if err != nil {
		return nil, fmt.Errorf("store: user conversations: %w", err)
	}
	out := []string{}
	for _, b := range have {
		out = append(out, b.open.IDs...)
		for _, part := range b.sealed {
			out = append(out, part...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
