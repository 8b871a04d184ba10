package cursors_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/cursors"
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
