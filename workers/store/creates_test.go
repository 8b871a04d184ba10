package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

func direct(u, w string) natter.Conversation {
	return natter.Conversation{ID: natter.DirectID(u, w), Kind: natter.KindDirect, CreatedBy: u, Members: []string{u, w}}
}

// TestDirectCreatesTwoStores: two Stores on one database (two service
// replicas), each batching its own creates, create the same direct pairs
// at once, from both sides, among creates of other pairs: each pair makes
// one conversation, created by exactly one create (the others answer
// ErrExists with it), listed once for each user.
func TestDirectCreatesTwoStores(t *testing.T) {
	t.Parallel()
	emb := storetest.StartEmbedded(t, "")
	stores := []*store.Store{storetest.Open(t, store.Config{URI: emb.URI()}), storetest.Open(t, store.Config{URI: emb.URI()})}
	ctx := context.Background()
	const pairs, per = 20, 6 // per: creates of each pair, alternating stores and sides
	var (
		mu      sync.Mutex
		created = map[string]int{}
		wg      sync.WaitGroup
	)
	for p := range pairs {
		u, w := fmt.Sprintf("a%02d", p), fmt.Sprintf("b%02d", p)
		for i := range per {
			s, c := stores[i%2], direct(u, w)
			if i%3 == 1 {
				c = direct(w, u)
			}
			wg.Go(func() {
				got, err := s.CreateConversation(ctx, c)
				if err != nil && !errors.Is(err, store.ErrExists) {
					t.Errorf("create %s: %v", c.ID, err)
					return
				}
				if got.ID != c.ID || (!slices.Equal(got.Members, c.Members) && !slices.Equal(got.Members, []string{c.Members[1], c.Members[0]})) {
					t.Errorf("create %s answered %+v", c.ID, got)
				}
				mu.Lock()
				if err == nil {
					created[c.ID]++
				}
				mu.Unlock()
			})
		}
		// Other pairs of u's in the same batches.
		for i := range 3 {
			c := direct(u, fmt.Sprintf("o%02d_%d", p, i))
			s := stores[i%2]
			wg.Go(func() {
				if _, err := s.CreateConversation(ctx, c); err != nil {
					t.Errorf("create %s: %v", c.ID, err)
				}
			})
		}
	}
	wg.Wait()
	for p := range pairs {
		u, w := fmt.Sprintf("a%02d", p), fmt.Sprintf("b%02d", p)
		id := natter.DirectID(u, w)
		if created[id] != 1 {
			t.Errorf("%s created by %d creates, want 1", id, created[id])
		}
		want := []string{id, natter.DirectID(u, fmt.Sprintf("o%02d_0", p)), natter.DirectID(u, fmt.Sprintf("o%02d_1", p)), natter.DirectID(u, fmt.Sprintf("o%02d_2", p))}
		slices.Sort(want)
		for _, s := range stores {
			if ids, err := s.UserConversations(ctx, u); err != nil || !slices.Equal(ids, want) {
				t.Errorf("%s's list %v (%v), want %v", u, ids, err, want)
			}
			if ids, err := s.UserConversations(ctx, w); err != nil || !slices.Equal(ids, []string{id}) {
				t.Errorf("%s's list %v (%v), want %s", w, ids, err, id)
			}
			for _, m := range []string{u, w} {
				if ok, err := s.IsMember(ctx, id, m); !ok || err != nil {
					t.Errorf("%s not a member of %s (%v)", m, id, err)
				}
			}
		}
	}
}

// TestDirectCreateCutShort: a create cut short after the users' lists are
// written, before the conversation (a crash), leaves a conversation nobody
// can see (no document: not a member, not found; a list skips what is not
// found), and its retry creates it, listed once.
func TestDirectCreateCutShort(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	c := direct("cutalice", "cutbob")
	crash := errors.New("crash")
	store.CutCreates(s, func() error { return crash })
	if _, err := s.CreateConversation(ctx, c); !errors.Is(err, crash) {
		t.Fatalf("create cut short: %v", err)
	}
	store.CutCreates(s, nil)
	if _, err := s.GetConversation(ctx, c.ID, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the cut: get %v, want ErrNotFound", err)
	}
	for _, m := range c.Members {
		if ok, err := s.IsMember(ctx, c.ID, m); ok || err != nil {
			t.Fatalf("after the cut: %s a member (%v)", m, err)
		}
	}
	got, err := s.CreateConversation(ctx, c)
	if err != nil || got.ID != c.ID {
		t.Fatalf("retry: %+v %v, want created", got, err)
	}
	for _, m := range c.Members {
		if ids, err := s.UserConversations(ctx, m); err != nil || !slices.Equal(ids, []string{c.ID}) {
			t.Fatalf("%s's list %v (%v)", m, ids, err)
		}
		if ok, err := s.IsMember(ctx, c.ID, m); !ok || err != nil {
			t.Fatalf("after the retry: %s not a member (%v)", m, err)
		}
	}
	if _, err := s.CreateConversation(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("again: %v, want ErrExists", err)
	}
}

// TestDirectCreatesBatched: creates in flight at once, of users with lists
// of every size (new users, users whose buckets exist), all land, each in
// both lists once, and a repeat answers ErrExists.
func TestDirectCreatesBatched(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	const users, each = 10, 100 // 100 > UserBuckets: later creates meet existing buckets
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for i := range each {
				c := direct(fmt.Sprintf("bu%d", u), fmt.Sprintf("bw%d_%03d", u, i))
				if _, err := s.CreateConversation(ctx, c); err != nil {
					t.Errorf("create %s: %v", c.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for u := range users {
		user := fmt.Sprintf("bu%d", u)
		ids, err := s.UserConversations(ctx, user)
		if err != nil || len(ids) != each {
			t.Fatalf("%s in %d conversations (%v), want %d", user, len(ids), err, each)
		}
		for i := 0; i < each; i += 25 {
			w := fmt.Sprintf("bw%d_%03d", u, i)
			if wl, err := s.UserConversations(ctx, w); err != nil || !slices.Equal(wl, []string{natter.DirectID(user, w)}) {
				t.Fatalf("%s's list %v (%v)", w, wl, err)
			}
		}
	}
	if _, err := s.CreateConversation(ctx, direct("bw0_000", "bu0")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("repeat: %v, want ErrExists", err)
	}
}

// TestUserListBucketSeals: a bucket's open part is sealed when it holds
// store.ListChunk ids and one more comes, so an add rewrites at most
// ListChunk ids; the list is the open parts and every sealed part, a
// removal finds a conversation in any part, a repeated add adds nothing,
// a bucket written before the parts (one document of any size) is sealed
// by its next add, and a seal cut short (its part written, the open part
// not) is invisible and overwritten by the next.
func TestUserListBucketSeals(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	ulists := s.DB().Collection(store.CollUserLists)
	var want []string
	for i := range 3*store.ListChunk + 5 {
		c := fmt.Sprintf("c%03d", i)
		want = append(want, c)
		if err := store.EditBucket(ctx, s, "seal#0", []string{c}, true, true); err != nil {
			t.Fatal(err)
		}
	}
	var open struct {
		IDs    []string `bson:"ids"`
		Sealed int      `bson:"sealed"`
	}
	if err := ulists.FindOne(ctx, bson.D{{Key: "_id", Value: "seal#0"}}).Decode(&open); err != nil || open.Sealed != 3 || len(open.IDs) != 5 {
		t.Fatalf("open part: %d ids, %d sealed (%v); want 5, 3", len(open.IDs), open.Sealed, err)
	}
	if got, err := s.UserConversations(ctx, "seal"); err != nil || !slices.Equal(got, want) {
		t.Fatalf("list %v (%v), want %v", got, err, want)
	}
	// Remove from a sealed part and the open part; add back (not fresh:
	// a repeat is no change).
	for _, c := range []string{"c001", "c100"} {
		if err := store.EditBucket(ctx, s, "seal#0", []string{c}, false, false); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.UserConversations(ctx, "seal"); slices.Contains(got, "c001") || slices.Contains(got, "c100") || len(got) != len(want)-2 {
		t.Fatalf("after removing c001 and c100: %v", got)
	}
	for range 2 {
		if err := store.EditBucket(ctx, s, "seal#0", []string{"c001", "c002"}, true, false); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.UserConversations(ctx, "seal"); len(got) != len(want)-1 || !slices.Contains(got, "c001") {
		t.Fatalf("after adding c001 and c002 back: %v", got)
	}

	// A bucket written before the parts: one document of 100 ids.
	var old []string
	for i := range 100 {
		old = append(old, fmt.Sprintf("o%03d", i))
	}
	if _, err := ulists.InsertOne(ctx, bson.D{{Key: "_id", Value: "legacy#5"}, {Key: "ids", Value: old}}); err != nil {
		t.Fatal(err)
	}
	if err := store.EditBucket(ctx, s, "legacy#5", []string{"o999"}, true, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserConversations(ctx, "legacy"); len(got) != 101 || !slices.Contains(got, "o999") || !slices.Contains(got, "o000") {
		t.Fatalf("legacy bucket after an add: %d ids", len(got))
	}
	if err := ulists.FindOne(ctx, bson.D{{Key: "_id", Value: "legacy#5"}}).Decode(&open); err != nil || open.Sealed != 1 || !slices.Equal(open.IDs, []string{"o999"}) {
		t.Fatalf("legacy open part %v, %d sealed (%v)", open.IDs, open.Sealed, err)
	}

	// A seal cut short: part 0 written (with what the open part held
	// then), the open part not rewritten; a removal follows.
	full := make([]string, store.ListChunk)
	for i := range full {
		full[i] = fmt.Sprintf("f%03d", i)
	}
	if _, err := ulists.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "cut#1"}, {Key: "ids", Value: full}},
		bson.D{{Key: "_id", Value: "cut#1.0"}, {Key: "ids", Value: full}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserConversations(ctx, "cut"); len(got) != store.ListChunk {
		t.Fatalf("cut short: %d listed, want %d", len(got), store.ListChunk)
	}
	if err := store.EditBucket(ctx, s, "cut#1", []string{"f000"}, false, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"g000", "g001"} { // the second seals
		if err := store.EditBucket(ctx, s, "cut#1", []string{c}, true, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := ulists.FindOne(ctx, bson.D{{Key: "_id", Value: "cut#1"}}).Decode(&open); err != nil || open.Sealed != 1 || !slices.Equal(open.IDs, []string{"g001"}) {
		t.Fatalf("cut open part %v, %d sealed (%v)", open.IDs, open.Sealed, err)
	}
	got, _ := s.UserConversations(ctx, "cut")
	if slices.Contains(got, "f000") || len(got) != store.ListChunk+1 {
		t.Fatalf("after the cut seal, a removal and an add: %v", got)
	}
}
