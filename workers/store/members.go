package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// Membership is kept in documents that are all read and written by _id, so
// that every hot read is a point lookup on the embedded FerretDB (which
// pushes down nothing else) and a change of a batch of users touches
// documents in proportion to the batch, not to the group:
//
//   - members: one document per membership, _id conv+"/"+user, with the
//     index of the member chunk that lists the user. "Is X a member" is one
//     lookup; adding a user is an insert (unique _id), leaving a delete.
//   - memberlists: a group's member list in chunks of up to MemberChunk ids,
//     _id conv+"#"+k, appended at the tail, and its head, _id conv: rev (the
//     member changes so far, which name their events), count, tail and fill.
//     Reading all members of a group of n is 1 + n/MemberChunk lookups.
//     A direct conversation has its two members in its own document.
//   - userlists: a user's conversations in UserBuckets buckets, b a hash
//     of the conversation, each an open part (_id user+"#"+b) of at most
//     ListChunk ids and the parts sealed before it (userlists.go): adding
//     a conversation rewrites one open part, whatever the list's size; a
//     list of 10,000 is ~320 lookups.
//
// The documents several writers share (a group's head and chunks, a user's
// bucket) change under a lease lock (locks.go): one member change of a group
// at a time across every service replica, and a bucket's read-change-write
// never loses a concurrent one. A change writes, in order: its event to the
// outbox, the membership documents of the joining users (marked with the
// change's rev), the chunks, the users' lists, the head, and for a leave the
// membership documents last. A change cut short (a crash) is completed by
// the next change that names the same users: a membership document whose
// rev is above the head's is treated as not yet applied.

// MemberChunk is the most ids one member chunk lists.
const MemberChunk = 1000

// Collections of the membership documents.
const (
	CollMembers     = "members"
	CollMemberLists = "memberlists"
	CollUserLists   = "userlists"
	CollLocks       = "locks"
	CollOutbox      = "outbox"
)

// parallelism bounds the concurrent point reads and writes of one call.
const parallelism = 8

// TooBigError is the error of an add that would make a group larger than
// its limit.
type TooBigError struct{ Have, Max int }

func (e *TooBigError) Error() string {
	return fmt.Sprintf("store: group would have %d members, at most %d", e.Have, e.Max)
}

// EventFunc makes the event of a member change: rev names the change, users
// are those whose membership it changed. Nil means no event.
type EventFunc func(rev int64, users []string) (Pending, error)

type memberDoc struct {
	ID    string `bson:"_id"`
	Conv  string `bson:"conv"`
	User  string `bson:"user"`
	Chunk int    `bson:"chunk"`
	Rev   int64  `bson:"rev"`
	At    int64  `bson:"at"`
}

type listHead struct {
	ID    string `bson:"_id"`
	Rev   int64  `bson:"rev"`
	Count int    `bson:"count"`
	Tail  int    `bson:"tail"`
	Fill  int    `bson:"fill"`
	// Name is the group's name once it was renamed (RenameGroup); nil
	// means the name it was created with, in its conversation document.
	Name *string `bson:"name,omitempty"`
	// The group's moderation (moderation.go); every change rewrites the
	// whole head, so the member changes keep these as they read them.
	Mod modFields `bson:",inline"`
}

// Change is what a member change or a rename did: whether it changed
// anything, the users whose membership it changed (none for a rename), and
// the group's rev and member count after it. A change with no effect
// leaves the rev as it was.
type Change struct {
	Changed bool
	Users   []string
	Rev     int64
	Count   int
}

type idList struct {
	ID  string   `bson:"_id"`
	IDs []string `bson:"ids"`
}

func memberID(conv, user string) string { return conv + "/" + user }
func chunkID(conv string, k int) string { return conv + "#" + strconv.Itoa(k) }

// forEach runs fn(i) for i in [0, n) on up to parallelism goroutines and
// returns the first error.
func forEach(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(n, parallelism) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// findByID reads the document _id id of coll into v; found is false when
// there is none.
func findByID(ctx context.Context, coll *mongo.Collection, id string, v any) (bool, error) {
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// IsMember reports whether user is a member of conv: one _id lookup (of
// the membership document of a group, of the conversation itself
// otherwise: a direct conversation lists its two members).
func (s *Store) IsMember(ctx context.Context, conv, user string) (bool, error) {
	if !natter.IsGroupID(conv) {
		var c struct {
			Members []string `bson:"members"`
		}
		err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: conv}},
			options.FindOne().SetProjection(bson.D{{Key: "members", Value: 1}})).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("store: is member: %w", err)
		}
		return slices.Contains(c.Members, user), nil
	}
	var d memberDoc
	ok, err := findByID(ctx, s.members, memberID(conv, user), &d)
	if err != nil {
		return false, fmt.Errorf("store: is member: %w", err)
	}
	return ok, nil
}

// lookupMembers returns the membership documents of users in conv.
func (s *Store) lookupMembers(ctx context.Context, conv string, users []string) (map[string]memberDoc, error) {
	docs := make([]memberDoc, len(users))
	found := make([]bool, len(users))
	err := forEach(len(users), func(i int) error {
		ok, err := findByID(ctx, s.members, memberID(conv, users[i]), &docs[i])
		found[i] = ok
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read memberships: %w", err)
	}
	out := make(map[string]memberDoc, len(users))
	for i, u := range users {
		if found[i] {
			out[u] = docs[i]
		}
	}
	return out, nil
}

func (s *Store) head(ctx context.Context, conv string) (listHead, bool, error) {
	var h listHead
	ok, err := findByID(ctx, s.mlists, conv, &h)
	if err != nil {
		return h, false, fmt.Errorf("store: read member head: %w", err)
	}
	return h, ok, nil
}

// MemberCount returns the number of members of group conv (0 for a
// conversation without a member list: direct or unknown).
func (s *Store) MemberCount(ctx context.Context, conv string) (int, error) {
	h, _, err := s.head(ctx, conv)
	return h.Count, err
}

// groupMembers returns the members of group conv, sorted: its head and
// chunks.
func (s *Store) groupMembers(ctx context.Context, conv string) ([]string, error) {
	h, ok, err := s.head(ctx, conv)
	if err != nil || !ok {
		return []string{}, err
	}
	chunks := make([][]string, h.Tail+1)
	err = forEach(len(chunks), func(k int) error {
		var l idList
		_, err := findByID(ctx, s.mlists, chunkID(conv, k), &l)
		chunks[k] = l.IDs
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read member chunks: %w", err)
	}
	out := make([]string, 0, h.Count)
	for _, c := range chunks {
		out = append(out, c...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// AddMembers adds users to group conv; the change's Users are those who
// joined (not members before), at most max members in all (else a
// [*TooBigError]). With ev set, a change that joins someone writes its
// event to the outbox first. Naming users already in completes a change to
// them that was cut short.
func (s *Store) AddMembers(ctx context.Context, conv string, users []string, max int, ev EventFunc) (Change, error) {
	var h listHead
	var joined []string
	err := s.locked(ctx, []string{"m/" + conv}, func(ctx context.Context) error {
		var err error
		joined, err = s.addLocked(ctx, conv, users, max, ev, true, &h)
		return err
	})
	if err != nil {
		return Change{}, fmt.Errorf("store: add members: %w", err)
	}
	return Change{Changed: len(joined) > 0, Users: joined, Rev: h.Rev, Count: h.Count}, nil
}

// addLocked is AddMembers under the group's lock. A change counts in the
// head's rev (it names the change's event) when bump is set; a create's
// first members do not (their event is conversation_created). The head as
// it is after the change goes to out when it is not nil.
func (s *Store) addLocked(ctx context.Context, conv string, users []string, max int, ev EventFunc, bump bool, out *listHead) ([]string, error) {
	users = dedup(users)
	h, _, err := s.head(ctx, conv)
	if err != nil {
		return nil, err
	}
	h.ID = conv
	if out != nil {
		*out = h
	}
	rev := h.Rev
	if bump {
		rev++
	}
	if max > 0 && h.Count+len(users) > max {
		// Near the limit: count exactly who is new first.
		have, err := s.lookupMembers(ctx, conv, users)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, u := range users {
			if d, ok := have[u]; !ok || d.Rev > h.Rev {
				n++
			}
		}
		if h.Count+n > max {
			return nil, &TooBigError{Have: h.Count + n, Max: max}
		}
	}
	// The memberships are inserted at the tail positions in order; a user
	// whose membership exists (a duplicate _id) is a member, or was
	// written by a change cut short (rev above the head's), which this
	// one completes. A duplicate's position stays unused.
	now := time.Now().UnixMilli()
	docs := make([]any, len(users))
	pos := h.Tail*MemberChunk + h.Fill
	for i, u := range users {
		docs[i] = memberDoc{ID: memberID(conv, u), Conv: conv, User: u, Chunk: (pos + i) / MemberChunk, Rev: rev, At: now}
	}
	dups, err := s.insertDups(ctx, s.members, docs)
	if err != nil {
		return nil, fmt.Errorf("write memberships: %w", err)
	}
	var dupUsers []string
	for i := range dups {
		dupUsers = append(dupUsers, users[i])
	}
	have, err := s.lookupMembers(ctx, conv, dupUsers)
	if err != nil {
		return nil, err
	}
	// A membership written by a change cut short is completed here: its
	// rev is above the head's (the head did not move), or, when a later
	// change committed that rev in the meantime, its user is missing from
	// its chunk (a rev alone would count that user as a member and lose
	// them from the list).
	listed, err := s.inChunks(ctx, conv, have)
	if err != nil {
		return nil, err
	}
	var joined []string
	byChunk := map[int][]string{}
	end := pos
	for i, u := range users {
		if !dups[i] {
			k := (pos + i) / MemberChunk
			byChunk[k] = append(byChunk[k], u)
			joined = append(joined, u)
			end = pos + i + 1
		} else if d, ok := have[u]; ok && (!listed[u] || d.Rev > h.Rev) {
			byChunk[d.Chunk] = append(byChunk[d.Chunk], u)
			joined = append(joined, u)
		}
	}
	fresh := len(joined) - len(dupUsers)
	if len(joined) == 0 {
		return nil, nil
	}
	h.Tail, h.Fill = end/MemberChunk, end%MemberChunk
	if err := s.writeEvent(ctx, ev, rev, joined); err != nil {
		return nil, err
	}
	if err := s.editChunks(ctx, conv, byChunk, true); err != nil {
		return nil, err
	}
	if err := s.userListsEdit(ctx, conv, joined, true, fresh == len(joined)); err != nil {
		return nil, err
	}
	h.Rev, h.Count = rev, h.Count+len(joined)
	if err := s.replace(ctx, s.mlists, conv, h); err != nil {
		return nil, fmt.Errorf("write member head: %w", err)
	}
	if out != nil {
		*out = h
	}
	return joined, nil
}

// RemoveMembers removes users from group conv; the change's Users are
// those who left (were members). With ev set, a change that removes
// someone writes its event to the outbox first.
func (s *Store) RemoveMembers(ctx context.Context, conv string, users []string, ev EventFunc) (Change, error) {
	var h listHead
	var left []string
	err := s.locked(ctx, []string{"m/" + conv}, func(ctx context.Context) error {
		var err error
		left, err = s.removeLocked(ctx, conv, users, ev, &h)
		return err
	})
	if err != nil {
		return Change{}, fmt.Errorf("store: remove members: %w", err)
	}
	return Change{Changed: len(left) > 0, Users: left, Rev: h.Rev, Count: h.Count}, nil
}

func (s *Store) removeLocked(ctx context.Context, conv string, users []string, ev EventFunc, out *listHead) ([]string, error) {
	users = dedup(users)
	h, _, err := s.head(ctx, conv)
	if err != nil {
		return nil, err
	}
	h.ID = conv
	*out = h
	have, err := s.lookupMembers(ctx, conv, users)
	if err != nil {
		return nil, err
	}
	var left []string
	byChunk := map[int][]string{}
	counted := 0
	for _, u := range users {
		d, ok := have[u]
		if !ok {
			continue
		}
		left = append(left, u)
		byChunk[d.Chunk] = append(byChunk[d.Chunk], u)
		if d.Rev <= h.Rev {
			counted++ // a pending join was never counted
		}
	}
	if len(left) == 0 {
		return nil, nil
	}
	rev := h.Rev + 1
	if err := s.writeEvent(ctx, ev, rev, left); err != nil {
		return nil, err
	}
	if err := s.editChunks(ctx, conv, byChunk, false); err != nil {
		return nil, err
	}
	if err := s.userListsEdit(ctx, conv, left, false, false); err != nil {
		return nil, err
	}
	err = forEach(len(left), func(i int) error {
		return s.wgate.do(ctx, func() error {
			_, err := s.members.DeleteOne(ctx, bson.D{{Key: "_id", Value: memberID(conv, left[i])}})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("delete memberships: %w", err)
	}
	h.Rev, h.Count = rev, max(0, h.Count-counted)
	h.forget(left)
	if err := s.replace(ctx, s.mlists, conv, h); err != nil {
		return nil, fmt.Errorf("write member head: %w", err)
	}
	*out = h
	return left, nil
}

// writeEvent writes the event ev makes for rev and users to the outbox
// collection (a retried change writes the same id: no change).
func (s *Store) writeEvent(ctx context.Context, ev EventFunc, rev int64, users []string) error {
	if ev == nil {
		return nil
	}
	p, err := ev(rev, users)
	if err != nil {
		return err
	}
	return s.insertIgnoringDups(ctx, s.outbox, []any{outboxDoc{ID: p.ID, Conv: p.Conv, At: p.At, Pending: p}})
}

// outboxDoc is a member change's event in the outbox collection, until it
// is published.
type outboxDoc struct {
	ID      string  `bson:"_id"`
	Conv    string  `bson:"conv"`
	At      int64   `bson:"at"`
	Pending Pending `bson:"p"`
}

// editChunks adds (or removes) the ids of byChunk to (from) the member
// chunks of conv, whose head lock the caller holds.
func (s *Store) editChunks(ctx context.Context, conv string, byChunk map[int][]string, add bool) error {
	ks := make([]int, 0, len(byChunk))
	for k := range byChunk {
		ks = append(ks, k)
	}
	err := forEach(len(ks), func(i int) error {
		id := chunkID(conv, ks[i])
		var l idList
		if _, err := findByID(ctx, s.mlists, id, &l); err != nil {
			return err
		}
		ids, changed := editIDs(l.IDs, byChunk[ks[i]], add)
		if !changed {
			return nil
		}
		return s.replace(ctx, s.mlists, id, idList{ID: id, IDs: ids})
	})
	if err != nil {
		return fmt.Errorf("write member chunks: %w", err)
	}
	return nil
}

// inChunks reports which users of have (memberships of conv) are listed in
// their member chunk, reading each chunk once.
func (s *Store) inChunks(ctx context.Context, conv string, have map[string]memberDoc) (map[string]bool, error) {
	byChunk := map[int][]string{}
	for u, d := range have {
		byChunk[d.Chunk] = append(byChunk[d.Chunk], u)
	}
	ks := make([]int, 0, len(byChunk))
	for k := range byChunk {
		ks = append(ks, k)
	}
	found := make([][]string, len(ks))
	err := forEach(len(ks), func(i int) error {
		var l idList
		if _, err := findByID(ctx, s.mlists, chunkID(conv, ks[i]), &l); err != nil {
			return err
		}
		for _, u := range byChunk[ks[i]] {
			if slices.Contains(l.IDs, u) {
				found[i] = append(found[i], u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read member chunks: %w", err)
	}
	listed := make(map[string]bool, len(have))
	for _, us := range found {
		for _, u := range us {
			listed[u] = true
		}
	}
	return listed, nil
}

// editIDs returns ids with edit added (or removed), and whether that
// changed it.
func editIDs(ids, edit []string, add bool) ([]string, bool) {
	set := make(map[string]struct{}, len(edit))
	for _, e := range edit {
		set[e] = struct{}{}
	}
	if !add {
		out := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { _, ok := set[id]; return ok })
		return out, len(out) != len(ids)
	}
	for _, id := range ids {
		delete(set, id)
	}
	if len(set) == 0 {
		return ids, false
	}
	for _, e := range edit {
		if _, ok := set[e]; ok {
			ids = append(ids, e)
			delete(set, e)
		}
	}
	return ids, true
}

// replace writes doc as the document _id id of coll, inserting it if
// there is none.
func (s *Store) replace(ctx context.Context, coll *mongo.Collection, id string, doc any) error {
	return s.wgate.do(ctx, func() error {
		_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
		return err
	})
}

// insertDups inserts docs in one unordered statement and returns the
// indexes of those whose _id exists (left as they are).
func (s *Store) insertDups(ctx context.Context, coll *mongo.Collection, docs []any) (map[int]bool, error) {
	err := s.wgate.do(ctx, func() error {
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
	var bwe mongo.BulkWriteException
	if err == nil {
		return nil, nil
	}
	if !errors.As(err, &bwe) || !onlyDuplicateKeys(bwe) {
		return nil, err
	}
	dups := make(map[int]bool, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		dups[we.Index] = true
	}
	return dups, nil
}

// insertIgnoringDups inserts docs in one unordered statement; those whose
// _id exists are left as they are.
func (s *Store) insertIgnoringDups(ctx context.Context, coll *mongo.Collection, docs []any) error {
	err := s.wgate.do(ctx, func() error {
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
	var bwe mongo.BulkWriteException
	if err != nil && !(errors.As(err, &bwe) && onlyDuplicateKeys(bwe)) {
		return err
	}
	return nil
}

// dedup returns users without repeats, in order.
func dedup(users []string) []string {
	seen := make(map[string]struct{}, len(users))
	out := make([]string, 0, len(users))
	for _, u := range users {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}
