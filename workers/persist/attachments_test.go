package persist_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/persist"
)

// TestDeleteDropsAttachments: applying a delete entry drops the deleted
// message's attachments (WithAttachmentDrop: no other role reads the log
// for them), and a drop that fails retries the entry until it succeeds.
func TestDeleteDropsAttachments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	acts, err := actions.Open(ctx, e.js.Conn(), e.js)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dropped []string
	drop := func(_ context.Context, ids []string) error {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, ids...)
		if len(dropped) == 1 {
			return errors.New("attachment storage unavailable")
		}
		return nil
	}
	sent, err := e.log.Append(ctx, msglog.Send{Conv: "g_att", From: "alice", Cmid: "m1", Body: "with a file"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Append(ctx, msglog.Send{Conv: "g_att", From: "alice", Cmid: "m2", Body: "without"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Append(ctx, msglog.Send{Conv: "g_att", From: "alice", Cmid: "d1", Type: natter.TypeDelete, Ref: sent.ID}); err != nil {
		t.Fatal(err)
	}
	e.runner(t, persist.New(e.st, e.log, nil, persist.WithActions(acts), persist.WithAttachmentDrop(drop)))
	e.settled(t, "g_att", 3)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(dropped, []string{sent.ID, sent.ID}) {
		t.Fatalf("dropped %v, want %s twice (a failed drop, then its retry)", dropped, sent.ID)
	}
}
