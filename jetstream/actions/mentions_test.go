package actions_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestMentionKeys: mentions recorded concurrently, some twice, past
// MentionKeep: the key keeps the newest MentionKeep seqs once each, a late
// older seq is not added, and the count is of the seqs above a read cursor.
func TestMentionKeys(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	key, all := subjects.ActionsMentionKey("g_1", "bob"), subjects.ActionsMentionAllKey("g_1")
	n := actions.MentionKeep + 20
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				errs <- b.AddMention(ctx, key, uint64(i+1))
				if i%5 == 0 { // a retry
					errs <- b.AddMention(ctx, key, uint64(i+1))
				}
			}
		})
	}
	wg.Wait()
	if err := b.AddMention(ctx, all, 7); err != nil {
		t.Fatal(err)
	}
	// Older than every kept seq once the key is full: not kept.
	if err := b.AddMention(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.MentionSeqs(ctx, []string{key, all, subjects.ActionsMentionKey("g_1", "nobody")})
	if err != nil {
		t.Fatal(err)
	}
	seqs := got[key]
	if len(seqs) != actions.MentionKeep || seqs[0] != uint64(n-actions.MentionKeep+1) || seqs[len(seqs)-1] != uint64(n) {
		t.Fatalf("kept %d seqs %v, want %d..%d", len(seqs), seqs, n-actions.MentionKeep+1, n)
	}
	if fmt.Sprint(got[all]) != "[7]" || len(got) != 2 {
		t.Fatalf("read %v", got)
	}
	for _, c := range []struct{ read, want uint64 }{{0, 100}, {uint64(n - 10), 10}, {uint64(n-10) + 0, 10}, {uint64(n), 0}, {uint64(n + 5), 0}} {
		if got := actions.MentionCount(seqs, c.read); got != c.want {
			t.Errorf("MentionCount(read %d) = %d, want %d", c.read, got, c.want)
		}
	}
}
