package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/event"

	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// TestUserConversationsDirect: a store given the embedded store's files
// (Config.SQLiteDir) reads a user's list, sealed parts included, with no
// find at all, and reads what a store going through FerretDB reads, writes
// of the other store included.
func TestUserConversationsDirect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emb := storetest.StartEmbedded(t, "")
	var finds atomic.Int64
	mon := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if ev.CommandName == "find" {
			finds.Add(1)
		}
	}}
	direct := storetest.Open(t, store.Config{URI: emb.URI(), SQLiteDir: emb.SQLiteDir(), Monitor: mon})
	plain := storetest.Open(t, store.Config{URI: emb.URI()})

	user := "alice" + t.Name()
	var want []string
	// One bucket of 70 (two sealed parts and an open one), and a few
	// more in buckets of their own, written through the plain store.
	crowded := store.BucketID(user, "g_crowd")
	for i := range 70 {
		conv := fmt.Sprintf("g_crowd%03d", i)
		if err := store.EditBucket(ctx, plain, crowded, []string{conv}, true, false); err != nil {
			t.Fatal(err)
		}
		want = append(want, conv)
	}
	for _, conv := range []string{"d_x", "g_y", "g_z"} {
		if err := store.EditBucket(ctx, plain, store.BucketID(user, conv), []string{conv}, true, true); err != nil {
			t.Fatal(err)
		}
		want = append(want, conv)
	}
	slices.Sort(want)
	want = slices.Compact(want)

	before := finds.Load()
	got, err := direct.UserConversations(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if n := finds.Load() - before; n != 0 {
		t.Fatalf("the direct read sent %d finds, want none", n)
	}
	viaFerret, err := plain.UserConversations(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || !slices.Equal(viaFerret, want) {
		t.Fatalf("direct %v\nvia FerretDB %v\nwant %v", got, viaFerret, want)
	}
	// A removal through the other store is read at once.
	if err := store.EditBucket(ctx, plain, crowded, []string{"g_crowd000"}, false, false); err != nil {
		t.Fatal(err)
	}
	if got, err = direct.UserConversations(ctx, user); err != nil || slices.Contains(got, "g_crowd000") || len(got) != len(want)-1 {
		t.Fatalf("after a removal: %v, %v", got, err)
	}
	// An unknown user has none.
	if got, err = direct.UserConversations(ctx, "nobody"+t.Name()); err != nil || len(got) != 0 {
		t.Fatalf("unknown user: %v, %v", got, err)
	}
}

// TestOpenIndexesAtOnce: a store given the embedded store's files has
// every collection's _id index on the lookup expression from Open on, not
// from the embedded store's next pass (seconds later, while the first
// requests' lookups would read the whole table).
func TestOpenIndexesAtOnce(t *testing.T) {
	t.Parallel()
	emb := storetest.StartEmbedded(t, "")
	s := storetest.Open(t, store.Config{URI: emb.URI(), SQLiteDir: emb.SQLiteDir()})
	for _, coll := range []string{store.CollConversations, store.CollUserLists, store.CollOutbox, store.CollLocks} {
		plan, err := store.LookupPlan(context.Background(), s, coll)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING INDEX") {
			t.Errorf("%s: a lookup by _id is %q, want a search of its _id index", coll, plan)
		}
	}
}
