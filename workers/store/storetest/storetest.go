package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/natter-im/natter/workers/store"
)

// stopTimeout bounds the stop of an embedded store and the close of a Store
// at the end of a test.
const stopTimeout = 20 * time.Second

// StartEmbedded runs an embedded FerretDB (store.StartEmbedded) with its
// files under dir, a fresh tb.TempDir() when dir is empty, and stops it when
// tb ends. Stopping it earlier is fine.
func StartEmbedded(tb testing.TB, dir string) *store.Embedded {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	emb, err := store.StartEmbedded(context.Background(), dir, nil)
	if err != nil {
		tb.Fatalf("start embedded store: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = emb.Stop(ctx)
	})
	return emb
}

// Open opens a Store with cfg (its URI: an embedded store's, say) and
// closes it when tb ends.
func Open(tb testing.TB, cfg store.Config) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// New is a Store on an embedded FerretDB of its own under tb.TempDir(),
// both ended when tb ends.
func New(tb testing.TB) *store.Store {
	tb.Helper()
	return Open(tb, store.Config{URI: StartEmbedded(tb, "").URI()})
}
