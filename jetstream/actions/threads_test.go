package actions_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/actions"
)

// TestThreadReplies: replies recorded concurrently, some twice, past one
// chunk: the thread's seqs are each reply once, in order, and the root's
// page record counts them with the newest TS; a message that is the root
// of nothing has no counts, and a reply naming another root is ignored.
func TestThreadReplies(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	root := msg(1, "text", "root", "")
	n := actions.ThreadChunk + 40
	replies := make([]natter.Message, n)
	for i := range replies {
		replies[i] = msg(uint64(i+3), "text", "re", "")
		replies[i].Thread = root.ID
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				errs <- b.AddReply(ctx, root, replies[i])
				if i%7 == 0 { // a retry
					errs <- b.AddReply(ctx, root, replies[i])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	other := msg(2, "text", "other", "")
	stray := msg(uint64(n+10), "text", "stray", "")
	stray.Thread = "m_elsewhere"
	if err := b.AddReply(ctx, root, stray); err != nil {
		t.Fatal(err)
	}
	seqs, err := b.ThreadSeqs(ctx, "g_1", root.Seq)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 3)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("thread seqs: %d of them %v, want 3..%d", len(seqs), seqs, n+2)
	}
	got := page(t, b, "", root, other)
	if got[0].ThreadReplies != n || got[0].ThreadLastAt != replies[n-1].TS {
		t.Fatalf("root: %d replies, last at %d; want %d, %d", got[0].ThreadReplies, got[0].ThreadLastAt, n, replies[n-1].TS)
	}
	if got[1].ThreadReplies != 0 || got[1].ThreadLastAt != 0 {
		t.Fatalf("not a root: %+v", got[1])
	}
	if seqs, err := b.ThreadSeqs(ctx, "g_1", other.Seq); err != nil || len(seqs) != 0 {
		t.Fatalf("thread of a message that is no root: %v %v", seqs, err)
	}
}
