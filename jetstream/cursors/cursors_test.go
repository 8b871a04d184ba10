package cursors_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

func open(t *testing.T) *cursors.Bucket {
	t.Helper()
	_, nc, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	b, err := cursors.Open(ctx, nc, js)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Raises never move a cursor back, whatever the order and concurrency of
// the writers.
func TestRaiseForwardOnly(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	key := subjects.ReadKey("alice", "g_1")
	if moved, err := b.Raise(ctx, key, 5); err != nil || !moved {
		t.Fatalf("first raise: moved %v, err %v", moved, err)
	}
	if moved, err := b.Raise(ctx, key, 3); err != nil || moved {
		t.Fatalf("raise back: moved %v, err %v", moved, err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := b.Raise(ctx, key, uint64(10+i)); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := b.RaiseAll(ctx, map[string]uint64{key: uint64(10 + (i*7)%40), subjects.ReadKey("alice", "g_2"): uint64(i + 1)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := b.Get(ctx, []string{key, subjects.ReadKey("alice", "g_2"), subjects.ReadKey("alice", "g_3")})
	if err != nil {
		t.Fatal(err)
	}
	if got[key] != 49 || got[subjects.ReadKey("alice", "g_2")] != 40 {
		t.Fatalf("after the concurrent raises: %v, want g_1 49 and g_2 40", got)
	}
	if _, ok := got[subjects.ReadKey("alice", "g_3")]; ok {
		t.Fatalf("a key never written has a value: %v", got)
	}
}

// Get reads more keys than one batched direct get answers.
func TestGetManyKeys(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	want := map[string]uint64{}
	keys := make([]string, 0, 2500)
	for i := range 2500 {
		k := subjects.DeliveredKey("bob", "d1", "c"+strconv.Itoa(i))
		keys = append(keys, k)
		if i%3 == 0 {
			want[k] = uint64(i + 1)
		}
	}
	if err := b.RaiseAll(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %d, want %d", k, got[k], v)
		}
	}
}

// With the revision cache, a writer that raises the same keys again writes
// them without reading them first, and a key another writer moved meanwhile
// (further, or deleted) is still never moved back.
func TestRaiseAllRevisionCache(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	cached, err := cursors.Open(ctx, nc, js, cursors.WithRevisionCache(16))
	if err != nil {
		t.Fatal(err)
	}
	other, err := cursors.Open(ctx, nc, js)
	if err != nil {
		t.Fatal(err)
	}
	// Every batched read of the bucket is a request on its direct get
	// subject: count them.
	var reads atomic.Int64
	sub, err := nc.Subscribe(kvbatch.BucketDirectGet(js.Options(), subjects.BucketCursors), func(*nats.Msg) { reads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a, b, c := subjects.ReadKey("alice", "g_1"), subjects.ReadKey("bob", "g_1"), subjects.ReadKey("carol", "g_1")
	if err := cached.RaiseAll(ctx, map[string]uint64{a: 1, b: 1, c: 1}); err != nil {
		t.Fatal(err)
	}
	readsAfter := func(want map[string]uint64) int64 {
		t.Helper()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		before := reads.Load()
		if err := cached.RaiseAll(ctx, want); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return reads.Load() - before
	}
	if n := readsAfter(map[string]uint64{a: 2, b: 2, c: 2}); n != 0 {
		t.Fatalf("raising keys this bucket wrote last read the bucket %d times, want 0", n)
	}
	// Another writer moves b further and deletes c.
	if _, err := other.Raise(ctx, b, 10); err != nil {
		t.Fatal(err)
	}
	if err := other.KV().Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := cached.RaiseAll(ctx, map[string]uint64{a: 3, b: 5, c: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := other.Get(ctx, []string{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if got[a] != 3 || got[b] != 10 || got[c] != 4 {
		t.Fatalf("after raises over another writer's changes: %v, want %s 3, %s 10 (not moved back), %s 4", got, a, b, c)
	}
	// The cache holds at most its size: many keys still raise correctly.
	many := map[string]uint64{}
	for i := range 100 {
		many[subjects.ReadKey("u"+strconv.Itoa(i), "g_2")] = uint64(i + 1)
	}
	for range 2 {
		if err := cached.RaiseAll(ctx, many); err != nil {
			t.Fatal(err)
		}
		for k := range many {
			many[k]++
		}
	}
	keys := make([]string, 0, len(many))
	for k := range many {
		keys = append(keys, k)
	}
	vals, err := other.Get(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range many {
		if vals[k] != v-1 {
			t.Fatalf("%s = %d, want %d", k, vals[k], v-1)
		}
	}
}

// A write whose ack never comes (the stream leader frozen, or the route
// that carried the write dropped) fails RaiseAll after DefaultTimeout when
// ctx has no deadline, instead of blocking the caller (the persist role's
// batch, with its messages) until the connection is lost. The remembered
// revision makes RaiseAll write without reading first, as persist does.
func TestRaiseAllAckNeverComes(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	b, err := cursors.Open(ctx, nc, js, cursors.WithRevisionCache(16))
	if err != nil {
		t.Fatal(err)
	}
	key := subjects.ReadKey("alice", "g_1")
	if err := b.RaiseAll(ctx, map[string]uint64{key: 1}); err != nil {
		t.Fatal(err)
	}
	// The bucket's stream goes and something that never answers takes its
	// subjects: a write is received and its ack never sent.
	if err := js.DeleteStream(ctx, subjects.KVStream(subjects.BucketCursors)); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.Subscribe(subjects.KVSubject(subjects.BucketCursors, ">"), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- b.RaiseAll(context.Background(), map[string]uint64{key: 2}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RaiseAll with its ack never sent: %v, want a context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d < cursors.DefaultTimeout/2 {
			t.Fatalf("RaiseAll failed after %s, before its bound %s", d, cursors.DefaultTimeout)
		}
	case <-time.After(cursors.DefaultTimeout + 10*time.Second):
		t.Fatalf("RaiseAll with its ack never sent still blocked after %s (its ctx has no deadline)", cursors.DefaultTimeout+10*time.Second)
	}
}
