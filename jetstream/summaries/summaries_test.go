package summaries_test

import (
	"context"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/summaries"
)

// A write-back compares and sets against the revision read before the
// store: one that a drop (a change) overtook keeps nothing, so the bucket
// never holds a summary older than the last change.
func TestWriteBackAfterDropKeepsNothing(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	b, err := summaries.Open(ctx, nc, js)
	if err != nil {
		t.Fatal(err)
	}
	old := natter.Conversation{ID: "g_1", Kind: natter.KindGroup, Name: "old", MemberCount: 2, Rev: 4}
	ents, err := b.Get(ctx, []string{"g_1", "g_2"})
	if err != nil || len(ents) != 0 {
		t.Fatalf("empty bucket: %v (%v)", ents, err)
	}
	if err := b.PutAll(ctx, []summaries.Item{{Conv: old}}); err != nil {
		t.Fatal(err)
	}
	ents, err = b.Get(ctx, []string{"g_1", "g_2"})
	if err != nil || !ents["g_1"].Found || ents["g_1"].Conv.Name != "old" || ents["g_1"].Conv.Rev != 4 || len(ents) != 1 {
		t.Fatalf("after the write: %+v (%v)", ents, err)
	}
	read := ents["g_1"].Rev
	// A change drops it after a lister read the revision...
	if err := b.Drop(ctx, "g_1"); err != nil {
		t.Fatal(err)
	}
	// ... whose write-back of what it read is refused, without an error.
	if err := b.PutAll(ctx, []summaries.Item{{Conv: natter.Conversation{ID: "g_1", Name: "stale"}, Rev: read}}); err != nil {
		t.Fatal(err)
	}
	ents, err = b.Get(ctx, []string{"g_1"})
	if err != nil || ents["g_1"].Found || ents["g_1"].Rev <= read {
		t.Fatalf("after the drop and a stale write-back: %+v (%v), want no summary at a newer revision", ents["g_1"], err)
	}
	// A write-back from the dropped revision keeps the new summary.
	if err := b.PutAll(ctx, []summaries.Item{{Conv: natter.Conversation{ID: "g_1", Name: "new"}, Rev: ents["g_1"].Rev}}); err != nil {
		t.Fatal(err)
	}
	if ents, err = b.Get(ctx, []string{"g_1"}); err != nil || ents["g_1"].Conv.Name != "new" {
		t.Fatalf("after the fresh write-back: %+v (%v)", ents["g_1"], err)
	}
}
