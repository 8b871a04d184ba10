package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/event"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// writeCommands are the commands that write (SQLite's one writer).
var writeCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true}

// cmdWatch records the store's commands: the most write commands in
// flight at once (lock renewals, which are not gated, left out), and the
// collections each command read (name -> collections).
type cmdWatch struct {
	mu                 sync.Mutex
	writing, maxWrites int
	gated              map[int64]bool // write commands in flight
	seen               map[string]map[string]bool
}

func newCmdWatch() *cmdWatch {
	return &cmdWatch{gated: map[int64]bool{}, seen: map[string]map[string]bool{}}
}

func (w *cmdWatch) monitor() *event.CommandMonitor {
	end := func(id int64) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gated[id] {
			w.writing--
			delete(w.gated, id)
		}
	}
	return &event.CommandMonitor{
		Started: func(_ context.Context, ev *event.CommandStartedEvent) {
			w.mu.Lock()
			defer w.mu.Unlock()
			coll := ""
			if v, err := ev.Command.LookupErr(ev.CommandName); err == nil {
				coll, _ = v.StringValueOK()
			}
			if writeCommands[ev.CommandName] && (ev.CommandName != "update" || coll != store.CollLocks) {
				w.gated[ev.RequestID] = true
				w.writing++
				w.maxWrites = max(w.maxWrites, w.writing)
			}
			if coll != "" {
				if w.seen[ev.CommandName] == nil {
					w.seen[ev.CommandName] = map[string]bool{}
				}
				w.seen[ev.CommandName][coll] = true
			}
		},
		Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) { end(ev.RequestID) },
		Failed:    func(_ context.Context, ev *event.CommandFailedEvent) { end(ev.RequestID) },
	}
}

// TestEmbeddedWritesOneAtATime: on the embedded store, a Store sends its
// write commands one at a time (in their order), however many requests
// write at once: concurrent writers would meet in SQLite's busy handler,
// which sleeps up to 100 ms at a time and lets later writers pass (the
// tail of concurrent creates). Reads still run side by side.
func TestEmbeddedWritesOneAtATime(t *testing.T) {
	t.Parallel()
	w := newCmdWatch()
	s := storetest.Open(t, store.Config{URI: storetest.StartEmbedded(t, "").URI(), Monitor: w.monitor()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 { // creates (batched, two batch writers) and read cursor writes at once
		wg.Go(func() {
			u, v := fmt.Sprintf("u%02d", i%5), fmt.Sprintf("w%02d", i)
			if _, err := s.CreateConversation(ctx, direct(u, v)); err != nil {
				errs <- err
				return
			}
			if err := s.SetReadCursor(ctx, u, natter.DirectID(u, v), 1); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxWrites != 1 {
		t.Fatalf("up to %d write commands in flight at once, want 1", w.maxWrites)
	}
}

// TestOutboxesReadNoConversations: the outbox sweep's read (Outboxes)
// reads the outbox collection only, never the conversations: on the
// embedded store any filter but _id scans the whole collection, and a
// sweep every 5 s of 10,000 conversations cost a third of the CPU while a
// user paged through them. A new conversation's event is there until it is
// published, and gone after.
func TestOutboxesReadNoConversations(t *testing.T) {
	t.Parallel()
	w := newCmdWatch()
	s := storetest.Open(t, store.Config{URI: storetest.StartEmbedded(t, "").URI(), Monitor: w.monitor()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := direct("ann", "ben")
	p := store.Pending{Event: natter.Event{ID: "conv:" + c.ID, Kind: natter.EventConversationCreated, Conv: c.ID}, At: 1}
	if _, err := s.CreateConversation(ctx, c, p); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.seen = map[string]map[string]bool{}
	w.mu.Unlock()
	boxes, err := s.Outboxes(ctx, time.Now().UnixMilli(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 1 || boxes[0].Conv != c.ID || len(boxes[0].Pending) != 1 || boxes[0].Pending[0].ID != p.ID {
		t.Fatalf("outboxes %+v, want the conversation_created of %s", boxes, c.ID)
	}
	w.mu.Lock()
	read := w.seen["find"]
	w.mu.Unlock()
	if read[store.CollConversations] || !read[store.CollOutbox] {
		t.Fatalf("Outboxes read %v, want the outbox collection only", read)
	}
	if err := s.Published(ctx, c.ID, boxes[0].Pending[0]); err != nil {
		t.Fatal(err)
	}
	if boxes, err := s.Outboxes(ctx, time.Now().UnixMilli(), 10); err != nil || len(boxes) != 0 {
		t.Fatalf("outboxes after publishing: %+v (%v), want none", boxes, err)
	}
}
