package streams_test

import (
	"context"
	"testing"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestApplyAndEnsure: Apply creates then changes nothing; a process's
// Ensure with other settings leaves the streams alone and reports the
// difference; Apply with the new settings updates.
func TestApplyAndEnsure(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.StartJetStream(t)
	ctx := context.Background()

	ch, err := streams.Apply(ctx, js, streams.Config{})
	if err != nil || len(ch) == 0 {
		t.Fatalf("first apply: %v %v", ch, err)
	}
	if ch, err := streams.Apply(ctx, js, streams.Config{}); err != nil || len(ch) != 0 {
		t.Fatalf("second apply changed %v (%v)", ch, err)
	}
	if ch, err := streams.Ensure(ctx, js, streams.Config{}); err != nil || len(ch) != 0 {
		t.Fatalf("ensure changed %v (%v)", ch, err)
	}
	other := streams.Config{HotTier: 500}
	ch, err = streams.Ensure(ctx, js, other)
	if err != nil || len(ch) != 1 || ch[0].Action != "differs" || ch[0].Name != subjects.StreamMsgs {
		t.Fatalf("ensure with another hot tier: %v %v", ch, err)
	}
	st, _ := js.Stream(ctx, subjects.StreamMsgs)
	if st.CachedInfo().Config.MaxMsgsPerSubject != 10_000 {
		t.Fatal("ensure changed the stream")
	}
	ch, err = streams.Apply(ctx, js, other)
	if err != nil || len(ch) != 1 || ch[0].Action != "updated" {
		t.Fatalf("apply with another hot tier: %v %v", ch, err)
	}
	st, _ = js.Stream(ctx, subjects.StreamMsgs)
	if st.CachedInfo().Config.MaxMsgsPerSubject != 500 {
		t.Fatal("apply did not change the stream")
	}
}
