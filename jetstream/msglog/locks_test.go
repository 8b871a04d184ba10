package msglog

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConvLocksReuse: an entry kept for reuse is unlocked and forgets its
// conversation: the next conversation to get it locks it at once, and it
// still excludes a second holder.
func TestConvLocksReuse(t *testing.T) {
	t.Parallel()
	ls := newConvLocks()
	ctx := context.Background()
	for i := range 3 * lockFree * lockShards {
		conv := "c" + strconv.Itoa(i)
		first, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := ls.lock(first, conv) // a reused entry left locked: would time out
		cancel()
		if err != nil {
			t.Fatalf("%s: first lock: %v", conv, err)
		}
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		_, err = ls.lock(short, conv) // held: must wait until short ends
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: second lock while held: %v, want deadline exceeded", conv, err)
		}
		ls.unlock(conv, l)
		if n := ls.size(); n != 0 {
			t.Fatalf("%s: %d entries after unlock, want 0", conv, n)
		}
	}
}

// TestConvLocksExclusive: holders of one conversation never overlap, with
// entries reused across conversations meanwhile.
func TestConvLocksExclusive(t *testing.T) {
	t.Parallel()
	ls := newConvLocks()
	const convs, workers, rounds = 5, 8, 300
	var inside [convs]int
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c := (w + r) % convs
				conv := "c" + strconv.Itoa(c)
				l, err := ls.lock(context.Background(), conv)
				if err != nil {
					errs <- err
					return
				}
				inside[c]++ // a race (and a count above 1) if two hold conv
				if inside[c] != 1 {
					errs <- errors.New(conv + ": two holders")
				}
				inside[c]--
				ls.unlock(conv, l)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := ls.size(); n != 0 {
		t.Fatalf("%d entries left, want 0", n)
	}
}

// BenchmarkConvLocks is the append's lock and unlock of a conversation
// nobody else holds (each append at a steady rate).
func BenchmarkConvLocks(b *testing.B) {
	ls := newConvLocks()
	ctx := context.Background()
	convs := make([]string, 1024)
	for i := range convs {
		convs[i] = "conv-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		conv := convs[i%len(convs)]
		i++
		l, err := ls.lock(ctx, conv)
		if err != nil {
			b.Fatal(err)
		}
		ls.unlock(conv, l)
	}
}
