package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/event"

	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// findCounter counts the find commands a store sends, by collection.
type findCounter struct {
	mu sync.Mutex
	by map[string]int
}

func (f *findCounter) monitor() *event.CommandMonitor {
	f.by = map[string]int{}
	return &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if ev.CommandName != "find" {
			return
		}
		coll, _ := ev.Command.Lookup("find").StringValueOK()
		f.mu.Lock()
		f.by[coll]++
		f.mu.Unlock()
	}}
}

func (f *findCounter) get(coll string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.by[coll]
}

// TestCreateBatchLookups: concurrent direct creates, one of a pair that
// exists among them, look their conversations up together: with the
// embedded store's file (as natter dev) no find of the conversations but
// the existing one's read, with $in finds (as on MongoDB) fewer finds than
// creates; with one find per _id (FerretDB through its wire) one each.
// Each way, every new one is created and listed, the existing one answers
// ErrExists.
func TestCreateBatchLookups(t *testing.T) {
	t.Parallel()
	emb := storetest.StartEmbedded(t, "")
	ctx := context.Background()
	const n = 40
	for _, mode := range []string{"direct", "in", "each"} {
		t.Run(mode, func(t *testing.T) {
			var finds findCounter
			cfg := store.Config{URI: emb.URI(), Monitor: finds.monitor()}
			if mode == "direct" {
				cfg.SQLiteDir = emb.SQLiteDir()
			}
			s := storetest.Open(t, cfg)
			if mode != "direct" {
				store.FindsByIn(s, mode == "in")
			}
			old := direct("lk"+mode, "lkold")
			if _, err := s.CreateConversation(ctx, old); err != nil {
				t.Fatal(err)
			}
			before := finds.get(store.CollConversations)
			var wg sync.WaitGroup
			for i := range n {
				c := direct("lk"+mode, fmt.Sprintf("lkw%02d", i))
				if i == n/2 {
					c = old
				}
				wg.Go(func() {
					got, err := s.CreateConversation(ctx, c)
					if c.ID == old.ID {
						if !errors.Is(err, store.ErrExists) || got.ID != old.ID {
							t.Errorf("existing %s: %+v %v, want ErrExists", c.ID, got, err)
						}
						return
					}
					if err != nil {
						t.Errorf("create %s: %v", c.ID, err)
					}
				})
			}
			wg.Wait()
			got := finds.get(store.CollConversations) - before
			switch mode {
			case "direct":
				if got != 1 { // the existing one's document
					t.Errorf("%d finds of conversations, want 1 (the existing one's read)", got)
				}
			case "in":
				if got >= n {
					t.Errorf("%d finds of conversations for %d creates, want fewer", got, n)
				}
			case "each":
				if got < n {
					t.Errorf("%d finds of conversations for %d creates, want one each", got, n)
				}
			}
			ids, err := s.UserConversations(ctx, "lk"+mode)
			if err != nil || len(ids) != n {
				t.Fatalf("%d listed (%v), want %d", len(ids), err, n)
			}
		})
	}
}

// TestReadBucketsEachWay: a user list with sealed parts reads the same
// through the SQLite file, through $in finds and through one find per _id,
// and a removal from a sealed part (which reads the sealed parts first)
// works each way.
func TestReadBucketsEachWay(t *testing.T) {
	t.Parallel()
	emb := storetest.StartEmbedded(t, "")
	ctx := context.Background()
	ways := map[string]*store.Store{
		"direct": storetest.Open(t, store.Config{URI: emb.URI(), SQLiteDir: emb.SQLiteDir()}),
		"in":     storetest.Open(t, store.Config{URI: emb.URI()}),
		"each":   storetest.Open(t, store.Config{URI: emb.URI()}),
	}
	store.FindsByIn(ways["in"], true)
	store.FindsByIn(ways["each"], false)
	for name, s := range ways {
		user := "rb" + name
		bucket := store.BucketID(user, "g_x")
		var want []string
		for i := range 2*store.ListChunk + 3 { // two sealed parts
			c := fmt.Sprintf("g_x%03d", i)
			want = append(want, c)
			if err := store.EditBucket(ctx, s, bucket, []string{c}, true, true); err != nil {
				t.Fatal(err)
			}
		}
		// A removal from the first sealed part, an add that is there.
		if err := store.EditBucket(ctx, s, bucket, []string{"g_x001"}, false, false); err != nil {
			t.Fatal(err)
		}
		if err := store.EditBucket(ctx, s, bucket, []string{"g_x002"}, true, false); err != nil {
			t.Fatal(err)
		}
		want = slices.DeleteFunc(want, func(c string) bool { return c == "g_x001" })
		for other, o := range ways {
			if got, err := o.UserConversations(ctx, user); err != nil || !slices.Equal(got, want) {
				t.Errorf("written %s, read %s: %v (%v), want %v", name, other, got, err, want)
			}
		}
	}
}
