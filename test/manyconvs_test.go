package test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestListAndSyncManyPages: for a user in 2,050 conversations (three pages
// of the service's list), conv.list and sync {} answer every conversation
// once, sorted, with its head (the heads of one page are read while the
// next is asked for), and each asks the service for at most three pages.
func TestListAndSyncManyPages(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	const n = 2*convapi.ListPageSize + 50
	const user = "pager"
	ctx := context.Background()
	nc := testenv.Connect(t, m.dev.NATSURL())
	log, err := msglog.New(ctx, nc, testenv.JetStream(t, nc), msglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ch {
				peer := fmt.Sprintf("q%05d", i)
				c := natter.Conversation{ID: natter.DirectID(user, peer), Kind: natter.KindDirect, CreatedBy: user, Members: []string{user, peer}}
				if _, err := m.dev.Store().CreateConversation(ctx, c); err != nil {
					t.Error(err)
					continue
				}
				msgs := 0
				if i%97 == 0 { // some conversations on every page have messages
					msgs = i%5 + 1
				}
				for k := range msgs {
					if _, err := log.Append(ctx, msglog.Send{Conv: c.ID, From: user, Cmid: fmt.Sprint("m", k), Body: "hi", FirstAttempt: true}); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				want[c.ID] = uint64(msgs)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var pages atomic.Int64 // list requests, seen by a plain subscriber
	sub, err := nc.Subscribe(subjects.ConvEndpoint(convapi.OpList), func(*nats.Msg) { pages.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, m.dev, user)
	check := func(op string, ids []string, heads []uint64) {
		t.Helper()
		if len(ids) != n {
			t.Fatalf("%s: %d conversations, want %d", op, len(ids), n)
		}
		if !slices.IsSorted(ids) {
			t.Fatalf("%s: conversations not sorted by id", op)
		}
		for i, id := range ids {
			if w, ok := want[id]; !ok || heads[i] != w {
				t.Fatalf("%s: %s head %d, want %d (listed %v)", op, id, heads[i], w, ok)
			}
		}
		if p := pages.Swap(0); p > 3 {
			t.Fatalf("%s asked for %d list pages, want at most 3", op, p)
		}
	}
	var list protocol.ConvList
	c.request("l", `{"op":"conv.list","id":"l"}`, &list)
	var ids []string
	var heads []uint64
	for _, cv := range list.Convs {
		ids, heads = append(ids, cv.ID), append(heads, cv.Head)
	}
	check("conv.list", ids, heads)
	var s protocol.SyncResult
	c.request("s", `{"op":"sync","id":"s","cursors":{}}`, &s)
	ids, heads = nil, nil
	for _, sc := range s.Convs {
		ids, heads = append(ids, sc.Conv), append(heads, sc.Head)
	}
	check("sync", ids, heads)

	// Paged: pages of 300 in id order, each with its heads and the user's
	// read cursors (raised to the head by the user's own sends, once the
	// persist role has stored them), and the total on the last page.
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		got, total := c.syncAll(300)
		if len(got) != n || total != 0 {
			return fmt.Errorf("paged sync: %d conversations, unread_total %d; want %d, 0", len(got), total, n)
		}
		for id, w := range want {
			if sc := got[id]; sc.Head != w || sc.Read != w || sc.Unread != 0 {
				return fmt.Errorf("paged sync: %s head %d read %d unread %d, want head and read %d", id, sc.Head, sc.Read, sc.Unread, w)
			}
		}
		list := c.listAll(300)
		if len(list) != n {
			return fmt.Errorf("paged conv.list: %d conversations, want %d", len(list), n)
		}
		for id, w := range want {
			if cv := list[id]; cv.Head != w || cv.Read != w || cv.Kind != natter.KindDirect || len(cv.Members) != 2 {
				return fmt.Errorf("paged conv.list: %s %+v, want head and read %d", id, cv, w)
			}
		}
		return nil
	})
	if p := pages.Swap(0); p < 2*((n+299)/300) {
		t.Fatalf("paged sync and conv.list asked for %d list pages, want at least %d", p, 2*((n+299)/300))
	}
}
