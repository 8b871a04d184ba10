package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// TestPresenceBucketUpgrade: a PRESENCE bucket of an older release (a
// bucket TTL of 90s, no per-key TTLs) refuses the edges' leases (they carry
// Nats-TTL); Ensure reports it as differing and leaves it; Apply updates
// it in place (no bucket TTL, LimitMarkerTTL, so per-key TTLs work) and
// keeps its keys.
func TestPresenceBucketUpgrade(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.StartJetStream(t)
	ctx := context.Background()
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subjects.BucketPresence, Description: "natter online users", TTL: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "seen.bob", []byte("1")); err != nil {
		t.Fatal(err)
	}
	lease := func() error {
		_, err := old.Create(ctx, "on.bob.e1", []byte("e1"), jetstream.KeyTTL(30*time.Second))
		if err == nil {
			err = old.Delete(ctx, "on.bob.e1")
		}
		return err
	}
	if err := lease(); err == nil {
		t.Fatal("the old bucket took a key with a TTL")
	}
	var differs bool
	ch, err := streams.Ensure(ctx, js, streams.Config{})
	for _, c := range ch {
		differs = differs || (c.Kind == "bucket" && c.Name == subjects.BucketPresence && c.Action == "differs")
	}
	if err != nil || !differs {
		t.Fatalf("ensure: %v %v, want PRESENCE differs", ch, err)
	}
	ch, err = streams.Apply(ctx, js, streams.Config{})
	if err != nil || len(ch) != 1 || ch[0].Name != subjects.BucketPresence || ch[0].Action != "updated" {
		t.Fatalf("apply: %v %v, want PRESENCE updated", ch, err)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketPresence)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bs := st.(*jetstream.KeyValueBucketStatus); bs.TTL() != 0 || bs.LimitMarkerTTL() != 90*time.Second {
		t.Fatalf("after apply: TTL %v LimitMarkerTTL %v, want 0 and 90s", bs.TTL(), bs.LimitMarkerTTL())
	}
	if _, err := kv.Get(ctx, "seen.bob"); err != nil {
		t.Fatalf("seen.bob after apply: %v", err)
	}
	if err := lease(); err != nil {
		t.Fatalf("a lease after apply: %v", err)
	}
	if ch, err := streams.Apply(ctx, js, streams.Config{}); err != nil || len(ch) != 0 {
		t.Fatalf("second apply changed %v (%v)", ch, err)
	}
}
