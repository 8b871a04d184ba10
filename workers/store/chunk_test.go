package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// TestInsertMessagesChunkedOnEmbedded: on the embedded store a large
// InsertMessages (the persist role's batches of 1,024) goes out as insert
// commands of at most 256 documents, each its own turn of the write gate,
// so that a request's write (a create) waits behind one chunk at most;
// redeliveries among them are still not errors and not counted as new.
func TestInsertMessagesChunkedOnEmbedded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sizes []int
	mon := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if ev.CommandName != "insert" || ev.Command.Lookup("insert").StringValue() != store.CollMessages {
			return
		}
		docs, ok := ev.Command.Lookup("documents").ArrayOK()
		if !ok {
			return
		}
		vals, _ := bson.Raw(docs).Values()
		mu.Lock()
		sizes = append(sizes, len(vals))
		mu.Unlock()
	}}
	s := storetest.Open(t, store.Config{URI: storetest.StartEmbedded(t, "").URI(), Monitor: mon})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs := make([]natter.Message, 600)
	for i := range msgs {
		msgs[i] = msg("d_chunk", uint64(i+1))
	}
	if n, err := s.InsertMessages(ctx, msgs[:100]); err != nil || n != 100 {
		t.Fatalf("first 100: %d new, %v", n, err)
	}
	mu.Lock()
	sizes = nil
	mu.Unlock()
	n, err := s.InsertMessages(ctx, msgs)
	if err != nil || n != 500 {
		t.Fatalf("600 with 100 stored already: %d new, %v; want 500", n, err)
	}
	if c, err := s.CountMessages(ctx, "d_chunk"); err != nil || c != 600 {
		t.Fatalf("%d stored (%v), want 600", c, err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, k := range sizes {
		total += k
		if k > 256 {
			t.Errorf("an insert of %d documents, want at most 256 per command: %v", k, sizes)
		}
	}
	if total != 600 {
		t.Errorf("insert commands of %v documents, want 600 in all", sizes)
	}
}
