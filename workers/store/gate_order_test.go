package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/workers/store"
)

// holdGate takes g's turn with a write that runs until the returned func is
// called.
func holdGate(t *testing.T, g store.Gate, bulk bool) (release func()) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	run := g.Do
	if bulk {
		run = g.Bulk
	}
	go func() {
		_ = run(context.Background(), func() error {
			close(in)
			<-out
			return nil
		})
	}()
	<-in
	return sync.OnceFunc(func() { close(out) })
}

// recordOrder starts a write in g's lane (bulk or not) that appends name
// to order when it runs.
func recordOrder(g store.Gate, ctx context.Context, bulk bool, name string, mu *sync.Mutex, order *[]string, wg *sync.WaitGroup) {
	run := g.Do
	if bulk {
		run = g.Bulk
	}
	wg.Go(func() {
		_ = run(ctx, func() error {
			mu.Lock()
			*order = append(*order, name)
			mu.Unlock()
			return nil
		})
	})
}

// TestGateRequestsBeforeBulk: the writes of requests waiting at the gate
// go before the bulk writes waiting there (the removals of published
// events, the persist worker's inserts), each lane in its order, and a bulk
// write still gets a turn after GateBurst of the others in a row.
func TestGateRequestsBeforeBulk(t *testing.T) {
	t.Parallel()
	g := store.NewGate(time.Minute)
	release := holdGate(t, g, false)
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	ctx := context.Background()
	// Queue them one at a time, in this order (each is queued once the
	// gate's queue has grown: poll with a deadline).
	queued := 0
	enqueue := func(bulk bool, name string) {
		recordOrder(g, ctx, bulk, name, &mu, &order, &wg)
		queued++
		deadline := time.Now().Add(10 * time.Second)
		for store.GateWaiting(g) < queued {
			if time.Now().After(deadline) {
				t.Fatalf("%s not queued", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	enqueue(true, "bulk1")
	enqueue(true, "bulk2")
	for i := range store.GateBurst + 2 {
		enqueue(false, fmt.Sprintf("req%d", i))
	}
	release()
	wg.Wait()
	want := []string{}
	for i := range store.GateBurst {
		want = append(want, fmt.Sprintf("req%d", i))
	}
	want = append(want, "bulk1", fmt.Sprintf("req%d", store.GateBurst), fmt.Sprintf("req%d", store.GateBurst+1), "bulk2")
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// TestGateTurnBounded: a write that hangs holds the gate for its bounded
// turn only: the next write runs beside it after the bound instead of
// waiting for it, and a write that gives up waiting (its ctx ended) leaves
// the queue without taking a turn from the others.
func TestGateTurnBounded(t *testing.T) {
	t.Parallel()
	const hold = 200 * time.Millisecond
	g := store.NewGate(hold)
	release := holdGate(t, g, false) // hangs until the end of the test
	defer release()
	// One that gives up while waiting.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := g.Do(short, func() error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("a write whose ctx ended while waiting: ran %v, %v", ran, err)
	}
	start := time.Now()
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := g.Do(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > hold+2*time.Second {
		t.Fatalf("the next write waited %v behind a hung one, want about the turn's bound (%v)", took, hold)
	}
	// The gate works on: two more in a row.
	for range 2 {
		if err := g.Bulk(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
}
