package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// openEmbeddedAt starts an embedded FerretDB with start under dir and opens
// a Store on it; both stop when the test ends.
func openEmbeddedAt(t testing.TB, dir string, start func(context.Context, string, *slog.Logger) (*store.Embedded, error)) *store.Store {
	t.Helper()
	ctx := context.Background()
	emb, err := start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Stop(context.Background()) })
	return storetest.Open(t, store.Config{URI: emb.URI()})
}

func msg(conv string, seq uint64) natter.Message {
	return natter.Message{ID: fmt.Sprintf("m_%s_%d", conv, seq), Conv: conv, Seq: seq, From: "alice", Cmid: fmt.Sprint(seq), Body: "hi", TS: time.Now().UnixMilli()}
}

func TestInsertMessagesIdempotent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	var batch []natter.Message
	for i := uint64(1); i <= 10; i++ {
		batch = append(batch, msg("c1", i))
	}
	n, err := s.InsertMessages(ctx, batch[:6])
	if err != nil || n != 6 {
		t.Fatalf("first insert: n=%d err=%v", n, err)
	}
	// A redelivered batch overlapping the first: only the new ones count.
	n, err = s.InsertMessages(ctx, batch)
	if err != nil || n != 4 {
		t.Fatalf("second insert: n=%d err=%v", n, err)
	}
	if c, _ := s.CountMessages(ctx, "c1"); c != 10 {
		t.Fatalf("stored %d, want 10", c)
	}
	// Same (conv, seq) under another id: on MongoDB the unique conv_seq
	// index refuses it and InsertMessages counts it as already stored; the
	// embedded store has no conv_seq (see Open) and stores it. Either way no
	// error (the log never gives one seq to two messages).
	dup := msg("c1", 3)
	dup.ID = "m_other"
	if _, err := s.InsertMessages(ctx, []natter.Message{dup}); err != nil {
		t.Fatalf("dup seq should not be an error, got %v", err)
	}
	got, err := s.MessagesBefore(ctx, "c1", 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(got); !slices.Equal(seqs, []uint64{5, 6, 7}) {
		t.Fatalf("before 8: %v", seqs)
	}
	got, err = s.MessagesRange(ctx, "c1", 9, 20, 10)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(got); !slices.Equal(seqs, []uint64{9, 10}) {
		t.Fatalf("range 9..: %v", seqs)
	}
}

func seqsOf(ms []natter.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func TestConversationsAndMembers(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	id := natter.DirectID("bob", "alice")
	if id != natter.DirectID("alice", "bob") {
		t.Fatal("direct id depends on order")
	}
	c := natter.Conversation{ID: id, Kind: natter.KindDirect, CreatedBy: "alice", Members: []string{"alice", "bob"}}
	if _, err := s.CreateConversation(ctx, c); err != nil {
		t.Fatal(err)
	}
	have, err := s.CreateConversation(ctx, c)
	if !errors.Is(err, store.ErrExists) || have.ID != id || len(have.Members) != 2 {
		t.Fatalf("second create: %v %+v", err, have)
	}
	g := natter.Conversation{ID: "g_1", Kind: natter.KindGroup, CreatedBy: "alice", Members: []string{"alice"}}
	if _, err := s.CreateConversation(ctx, g); err != nil {
		t.Fatal(err)
	}
	if joined, err := s.AddMembers(ctx, "g_1", []string{"bob", "carol", "bob", "alice"}, 0, nil); err != nil || !slices.Equal(joined.Users, []string{"bob", "carol"}) {
		t.Fatalf("add: joined %v, %v", joined, err)
	}
	if left, err := s.RemoveMembers(ctx, "g_1", []string{"carol", "dave"}, nil); err != nil || !slices.Equal(left.Users, []string{"carol"}) {
		t.Fatalf("remove: left %v, %v", left, err)
	}
	if n, _ := s.MemberCount(ctx, "g_1"); n != 2 {
		t.Fatalf("member count %d, want 2", n)
	}
	got, err := s.GetConversation(ctx, "g_1", true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Members)
	if !slices.Equal(got.Members, []string{"alice", "bob"}) {
		t.Fatalf("members %v", got.Members)
	}
	convs, _ := s.UserConversations(ctx, "bob")
	slices.Sort(convs)
	if !slices.Equal(convs, []string{id, "g_1"}) {
		t.Fatalf("bob's convs %v", convs)
	}
	if convs, _ := s.UserConversations(ctx, "carol"); len(convs) != 0 {
		t.Fatalf("carol's convs %v", convs)
	}
	if _, err := s.GetConversation(ctx, "nope", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	for _, seq := range []uint64{5, 3, 9} {
		if err := s.SetReadCursor(ctx, "bob", "g_1", seq); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := s.ReadCursor(ctx, "bob", "g_1"); r != 9 {
		t.Fatalf("read cursor %d, want 9 (never moves back)", r)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		emb, err := store.StartEmbedded(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, store.Config{URI: emb.URI()})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if _, err := s.InsertMessages(ctx, []natter.Message{msg("c9", 1)}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.GetMessage(ctx, "m_c9_1"); err != nil {
			t.Fatalf("after restart: %v", err)
		}
		_ = s.Close(ctx)
		_ = emb.Stop(ctx)
	}
}

func messageIndexes(t *testing.T, s *store.Store) []string {
	t.Helper()
	specs, err := s.DB().Collection(store.CollMessages).Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	slices.Sort(names)
	return names
}

// TestNoSeqIndexOnEmbedded: on the embedded store (FerretDB v1, SQLite) Open
// leaves conv_seq out from the first start, and drops one an earlier
// version created; _id stays unique, so inserts stay idempotent.
func TestNoSeqIndexOnEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := store.Config{URI: storetest.StartEmbedded(t, "").URI()}

	fresh, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close(ctx)
	if _, err := fresh.InsertMessages(ctx, []natter.Message{msg("c1", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := messageIndexes(t, fresh); !slices.Equal(got, []string{"_id_"}) {
		t.Fatalf("indexes on a fresh embedded store: %v, want [_id_]", got)
	}

	old, err := store.OpenSeqIndex(ctx, cfg) // as natter did before
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	if got := messageIndexes(t, old); !slices.Equal(got, []string{"_id_", "conv_seq"}) {
		t.Fatalf("indexes after the old Open: %v", got)
	}
	again, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	if got := messageIndexes(t, again); !slices.Equal(got, []string{"_id_"}) {
		t.Fatalf("indexes after reopening: %v, want conv_seq dropped", got)
	}
	if n, err := again.InsertMessages(ctx, []natter.Message{msg("c1", 1), msg("c1", 2)}); err != nil || n != 1 {
		t.Fatalf("redelivery after the drop: n=%d err=%v, want 1 new", n, err)
	}
}

// TestMemberChangeCutShort: a membership written by a change that did not
// finish (its rev above the head's: no chunk, no list, no count) is
// completed by the next change naming the user, with one event; a
// membership of a finished change is no change.
func TestMemberChangeCutShort(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	g := natter.Conversation{ID: "g_cut", Kind: natter.KindGroup, CreatedBy: "alice", Members: []string{"alice"}}
	if _, err := s.CreateConversation(ctx, g); err != nil {
		t.Fatal(err)
	}
	// What a change of rev 1 that died after its first write leaves.
	_, err := s.DB().Collection(store.CollMembers).InsertOne(ctx, bson.D{{Key: "_id", Value: "g_cut/bob"},
		{Key: "conv", Value: "g_cut"}, {Key: "user", Value: "bob"}, {Key: "chunk", Value: 0}, {Key: "rev", Value: int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	var events [][]string
	ev := func(rev int64, users []string) (store.Pending, error) {
		events = append(events, users)
		return store.Pending{Event: natter.Event{ID: fmt.Sprintf("join:g_cut:%d", rev), Conv: "g_cut"}}, nil
	}
	joined, err := s.AddMembers(ctx, "g_cut", []string{"alice", "bob", "carol"}, 0, ev)
	if err != nil || !slices.Equal(joined.Users, []string{"bob", "carol"}) || len(events) != 1 {
		t.Fatalf("joined %v (%v), events %v; want bob (completed) and carol", joined, err, events)
	}
	got, _ := s.GetConversation(ctx, "g_cut", true)
	if n, _ := s.MemberCount(ctx, "g_cut"); n != 3 || !slices.Equal(got.Members, []string{"alice", "bob", "carol"}) {
		t.Fatalf("count %d members %v", n, got.Members)
	}
	if convs, _ := s.UserConversations(ctx, "bob"); !slices.Equal(convs, []string{"g_cut"}) {
		t.Fatalf("bob's list %v", convs)
	}
	if joined, err := s.AddMembers(ctx, "g_cut", []string{"bob"}, 0, ev); err != nil || len(joined.Users) != 0 || len(events) != 1 {
		t.Fatalf("again: joined %v (%v), events %v", joined, err, events)
	}
}

// TestMemberChangeCutShortThenOvertaken: a change cut short after its
// membership writes (rev 1, the head still at 0) is overtaken by another
// change, which commits rev 1 itself; the retry of the first must still
// list its users (before, a membership whose rev was not above the head's
// counted as complete, and the user was lost from the member list).
func TestMemberChangeCutShortThenOvertaken(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	g := natter.Conversation{ID: "g_over", Kind: natter.KindGroup, CreatedBy: "alice", Members: []string{"alice"}}
	if _, err := s.CreateConversation(ctx, g); err != nil {
		t.Fatal(err)
	}
	_, err := s.DB().Collection(store.CollMembers).InsertOne(ctx, bson.D{{Key: "_id", Value: "g_over/bob"},
		{Key: "conv", Value: "g_over"}, {Key: "user", Value: "bob"}, {Key: "chunk", Value: 0}, {Key: "rev", Value: int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if joined, err := s.AddMembers(ctx, "g_over", []string{"carol"}, 0, nil); err != nil || !slices.Equal(joined.Users, []string{"carol"}) {
		t.Fatalf("overtaking change: joined %v (%v)", joined, err)
	}
	if joined, err := s.AddMembers(ctx, "g_over", []string{"bob"}, 0, nil); err != nil || !slices.Equal(joined.Users, []string{"bob"}) {
		t.Fatalf("retry of the change cut short: joined %v (%v), want bob", joined, err)
	}
	got, _ := s.GetConversation(ctx, "g_over", true)
	if n, _ := s.MemberCount(ctx, "g_over"); n != 3 || !slices.Equal(got.Members, []string{"alice", "bob", "carol"}) {
		t.Fatalf("count %d members %v, want 3: alice bob carol", n, got.Members)
	}
	if left, err := s.RemoveMembers(ctx, "g_over", []string{"bob"}, nil); err != nil || !slices.Equal(left.Users, []string{"bob"}) {
		t.Fatalf("remove: left %v (%v)", left, err)
	}
	if n, _ := s.MemberCount(ctx, "g_over"); n != 2 {
		t.Fatalf("count after remove %d, want 2", n)
	}
}

// TestMigrateMembers: a store written before the membership documents (a
// group's members in an array of its conversation document, a user's
// conversations in the users collection) is migrated by the next Open:
// memberships, member lists, counts and users' lists as if written now,
// the old arrays gone, and a second Open finds nothing to do.
func TestMigrateMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := store.Config{URI: storetest.StartEmbedded(t, "").URI()}
	old := storetest.Open(t, cfg)
	d := natter.DirectID("alice", "bob")
	convs := old.DB().Collection(store.CollConversations)
	if _, err := convs.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "g_old"}, {Key: "kind", Value: "group"}, {Key: "created_by", Value: "alice"},
			{Key: "members", Value: bson.A{"alice", "bob", "carol"}}, {Key: "rev", Value: int64(4)}},
		bson.D{{Key: "_id", Value: d}, {Key: "kind", Value: "direct"}, {Key: "created_by", Value: "alice"},
			{Key: "members", Value: bson.A{"alice", "bob"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.DB().Collection(store.CollUsers).InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "alice"}, {Key: "convs", Value: bson.A{"g_old", d}}},
		bson.D{{Key: "_id", Value: "bob"}, {Key: "convs", Value: bson.A{"g_old", d}}},
		bson.D{{Key: "_id", Value: "carol"}, {Key: "convs", Value: bson.A{"g_old"}}},
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s := storetest.Open(t, cfg)
		g, err := s.GetConversation(ctx, "g_old", true)
		if err != nil || !slices.Equal(g.Members, []string{"alice", "bob", "carol"}) {
			t.Fatalf("group members %v (%v)", g.Members, err)
		}
		if n, _ := s.MemberCount(ctx, "g_old"); n != 3 {
			t.Fatalf("count %d", n)
		}
		for user, want := range map[string][]string{"alice": {d, "g_old"}, "bob": {d, "g_old"}, "carol": {"g_old"}} {
			if got, err := s.UserConversations(ctx, user); err != nil || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Fatalf("%s's list %v (%v), want %v", user, got, err, want)
			}
		}
		for _, c := range []string{"g_old", d} {
			if ok, err := s.IsMember(ctx, c, "bob"); !ok || err != nil {
				t.Fatalf("bob not a member of %s (%v)", c, err)
			}
		}
		if ok, _ := s.IsMember(ctx, d, "carol"); ok {
			t.Fatal("carol a member of alice and bob's direct conversation")
		}
		if n, _ := s.DB().Collection(store.CollUsers).CountDocuments(ctx, bson.D{}); n != 0 {
			t.Fatalf("%d users documents left", n)
		}
		// A change after the migration names its event after the old revs.
		var rev int64
		ev := func(r int64, _ []string) (store.Pending, error) {
			rev = r
			return store.Pending{Event: natter.Event{ID: fmt.Sprintf("join:g_old:%d", r), Conv: "g_old"}}, nil
		}
		if _, err := s.AddMembers(ctx, "g_old", []string{"dave"}, 0, ev); err != nil || rev <= 4 {
			t.Fatalf("rev %d after the migration (%v), want above 4", rev, err)
		}
		if _, err := s.RemoveMembers(ctx, "g_old", []string{"dave"}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRenameGroup: a rename takes the group's next rev, shared with its
// member changes; the summary reads the new name and the rev; renaming to
// the current name changes nothing; member changes keep the name; its
// event goes to the outbox under the rev.
func TestRenameGroup(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	g := natter.Conversation{ID: "g_ren", Kind: natter.KindGroup, Name: "Old", CreatedBy: "alice", Members: []string{"alice", "bob"}}
	if _, err := s.CreateConversation(ctx, g); err != nil {
		t.Fatal(err)
	}
	summary := func() natter.Conversation {
		t.Helper()
		c, err := s.ConversationSummary(ctx, "g_ren", 100)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := summary(); c.Name != "Old" || c.Rev != 0 || c.MemberCount != 2 {
		t.Fatalf("created: %+v", c)
	}
	var revs []int64
	ev := func(rev int64, users []string) (store.Pending, error) {
		revs = append(revs, rev)
		return store.Pending{Event: natter.Event{ID: fmt.Sprintf("rename:g_ren:%d", rev), Conv: "g_ren"}}, nil
	}
	if ch, err := s.RenameGroup(ctx, "g_ren", "Old", ev); err != nil || ch.Changed || ch.Rev != 0 || len(revs) != 0 {
		t.Fatalf("rename to the same name: %+v (%v), events at %v", ch, err, revs)
	}
	if ch, err := s.RenameGroup(ctx, "g_ren", "New", ev); err != nil || !ch.Changed || ch.Rev != 1 || ch.Count != 2 || !slices.Equal(revs, []int64{1}) {
		t.Fatalf("rename: %+v (%v), events at %v", ch, err, revs)
	}
	if c := summary(); c.Name != "New" || c.Rev != 1 {
		t.Fatalf("renamed: %+v", c)
	}
	if ch, err := s.AddMembers(ctx, "g_ren", []string{"carol"}, 0, nil); err != nil || ch.Rev != 2 || ch.Count != 3 || !ch.Changed {
		t.Fatalf("add after the rename: %+v (%v)", ch, err)
	}
	if ch, err := s.RenameGroup(ctx, "g_ren", "New", ev); err != nil || ch.Changed || ch.Rev != 2 {
		t.Fatalf("rename to the name it has after a member change: %+v (%v)", ch, err)
	}
	if ch, err := s.RemoveMembers(ctx, "g_ren", []string{"bob"}, nil); err != nil || ch.Rev != 3 || ch.Count != 2 {
		t.Fatalf("remove: %+v (%v)", ch, err)
	}
	if c := summary(); c.Name != "New" || c.Rev != 3 || c.MemberCount != 2 {
		t.Fatalf("after member changes: %+v", c)
	}
	boxes, err := s.Outboxes(ctx, time.Now().Add(time.Minute).UnixMilli(), 10)
	if err != nil || len(boxes) != 1 || len(boxes[0].Pending) != 1 || boxes[0].Pending[0].ID != "rename:g_ren:1" {
		t.Fatalf("outbox %+v (%v), want the rename's event", boxes, err)
	}
}
