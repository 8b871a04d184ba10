package msglog_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
)

// BenchmarkAppend appends to one conversation, one send at a time.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	l, _ := newLog(b, startServer(b, streams.Config{}))
	i := 0
	for b.Loop() {
		i++
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("m", i), Body: "hello there"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel appends from GOMAXPROCS*8 goroutines, each to 16
// conversations of its own.
func BenchmarkAppendParallel(b *testing.B) {
	ctx := context.Background()
	l, _ := newLog(b, startServer(b, streams.Config{}))
	var goroutines atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		for i := 0; pb.Next(); i++ {
			s := msglog.Send{Conv: fmt.Sprint("p", g, "_", i%16), From: "u1", Cmid: fmt.Sprint("m", i), Body: "hello there"}
			if _, err := l.Append(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewestPage reads the newest 50 messages of a conversation with
// 1k and with 20k messages (the hot tier keeps 10k), among filler in 200
// other conversations; the cost must not grow with the conversation.
func BenchmarkNewestPage(b *testing.B) {
	ctx := context.Background()
	l := filledLog(b)
	for _, conv := range []string{"small", "big"} {
		b.Run("msgs="+map[string]string{"small": "1k", "big": "20k"}[conv], func(b *testing.B) {
			for b.Loop() {
				msgs, err := l.Before(ctx, conv, 0, 50)
				if err != nil || len(msgs) != 50 {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
			}
		})
	}
}

// BenchmarkPageBack reads 50 messages starting some distance behind the head
// of the 20k conversation (a sync from an old cursor): the cost grows with
// the distance, one direct get per 64 messages, not with the conversation.
func BenchmarkPageBack(b *testing.B) {
	ctx := context.Background()
	l := filledLog(b)
	for _, back := range []uint64{100, 1000, 5000} {
		b.Run(fmt.Sprint("back=", back), func(b *testing.B) {
			for b.Loop() {
				msgs, _, err := l.After(ctx, "big", 20_000-back, 50)
				if err != nil || len(msgs) != 50 {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
			}
		})
	}
}

// filledLog returns a Log on a server of its own whose conversation "big"
// has 20k messages and "small" 1k (one per 20 of big, so both newest pages
// sit at the end of the stream), among 20k filler messages in 200 other
// conversations appended at the same time.
func filledLog(b *testing.B) *msglog.Log {
	b.Helper()
	ctx := context.Background()
	l, _ := newLog(b, startServer(b, streams.Config{}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	send := func(conv string, i int) bool {
		_, err := l.Append(ctx, msglog.Send{Conv: conv, From: "u1", Cmid: fmt.Sprint("m", i), Body: "some text of a typical length, about sixty bytes or so"})
		if err != nil {
			errs <- err
		}
		return err == nil
	}
	wg.Go(func() {
		for i := 1; i <= 20_000; i++ {
			if !send("big", i) || (i%20 == 0 && !send("small", i/20)) {
				return
			}
		}
	})
	for g := range 4 {
		wg.Go(func() {
			for c := range 50 {
				for i := 1; i <= 100; i++ {
					if !send(fmt.Sprint("filler", g, "_", c), i) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return l
}
