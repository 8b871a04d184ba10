package attachgc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/attachgc"
)

// TestSweepExpiresUnsentUploads: with a clock the test moves, an upload no
// message carries goes once it is older than the expiry (bytes, metadata,
// quota); a younger one and one a message carries stay.
func TestSweepExpiresUnsentUploads(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Apply(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	meta, err := attachments.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	st, err := attachments.OpenObjectStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	put := func(created time.Time, msgs ...string) attachments.Meta {
		m := attachments.Meta{ID: attachments.NewID(), Owner: "alice", Type: "text/plain", Size: 5, Created: created.UnixMilli(), Msgs: msgs}
		if _, err := st.Put(ctx, subjects.AttachObject(m.ID), strings.NewReader("hello"), 5, m.Type); err != nil {
			t.Fatal(err)
		}
		if _, err := meta.AddUsed(ctx, "alice", 5, 0); err != nil {
			t.Fatal(err)
		}
		if err := meta.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := put(start)
	sent := put(start, "m_1")
	young := put(start.Add(20 * time.Hour))
	sw := attachgc.NewSweeper(meta, st, attachgc.SweepConfig{Now: clock})

	if n, err := sw.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep at upload time: %d, %v", n, err)
	}
	now.Store(start.Add(24*time.Hour + time.Minute).UnixNano())
	if n, err := sw.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep a day later: %d deleted, %v; want 1", n, err)
	}
	if _, _, err := meta.Get(ctx, old.ID); !errors.Is(err, attachments.ErrNotFound) {
		t.Fatalf("expired upload's metadata: %v", err)
	}
	if _, err := st.Get(ctx, subjects.AttachObject(old.ID), 0, -1); !errors.Is(err, attachments.ErrNotFound) {
		t.Fatalf("expired upload's bytes: %v", err)
	}
	for _, m := range []attachments.Meta{sent, young} {
		if _, _, err := meta.Get(ctx, m.ID); err != nil {
			t.Fatalf("%s gone: %v", m.ID, err)
		}
	}
	if u, _ := meta.Used(ctx, "alice"); u != 10 {
		t.Fatalf("quota after the sweep: %d, want 10", u)
	}
	now.Store(start.Add(45 * time.Hour).UnixNano())
	if n, err := sw.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("second sweep: %d, %v; want the young one", n, err)
	}
	if _, _, err := meta.Get(ctx, sent.ID); err != nil {
		t.Fatalf("the sent one: %v", err)
	}
}
