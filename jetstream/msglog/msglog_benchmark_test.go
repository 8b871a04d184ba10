package msglog_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// BenchmarkAppend appends to one conversation, one send at a time, as a
// caller that cannot tell a first attempt from a retry (the retry check
// runs: a stand-in persist worker acks PERSIST without storing anything,
// so the check reads the few entries above its ack floor; there is no
// archive to ask, which in natter costs a request to the conversations
// service more).
// BenchmarkAppendFirst sends first attempts, as the edge does for SDK
// clients.
func BenchmarkAppend(b *testing.B)      { benchAppend(b, false) }
func BenchmarkAppendFirst(b *testing.B) { benchAppend(b, true) }

func benchAppend(b *testing.B, first bool) {
	ctx := context.Background()
	l, js := newLog(b, startServer(b, streams.Config{}))
	consumePersist(b, js)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("m", i), Body: "hello there", FirstAttempt: first}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel appends from GOMAXPROCS*8 goroutines, each to 16
// conversations of its own; BenchmarkAppendParallelFirst as first attempts.
func BenchmarkAppendParallel(b *testing.B)      { benchAppendParallel(b, false) }
func BenchmarkAppendParallelFirst(b *testing.B) { benchAppendParallel(b, true) }

func benchAppendParallel(b *testing.B, first bool) {
	ctx := context.Background()
	l, js := newLog(b, startServer(b, streams.Config{}))
	consumePersist(b, js)
	var goroutines atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		for i := 0; pb.Next(); i++ {
			s := msglog.Send{Conv: fmt.Sprint("p", g, "_", i%16), From: "u1", Cmid: fmt.Sprint("m", i), Body: "hello there", FirstAttempt: first}
			if _, err := l.Append(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewestPage reads the newest 50 messages of a conversation with
// 1k and with 20k messages (the hot tier keeps 10k); their last 1k messages
// are interleaved alike with each other and with filler. The cost must not
// grow with the conversation.
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

// BenchmarkNewestPageSparse reads the newest 50 of 128 messages of a
// conversation with n messages of other conversations between each two of
// its own. Up to 7 between, the page is one batched read that walks the
// entries between (cheaper than a get each); beyond, one direct get per
// entry by the back windows, so the cost stops growing with n.
func BenchmarkNewestPageSparse(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{0, 10, 30, 100, 1000} {
		b.Run(fmt.Sprint("between=", n), func(b *testing.B) {
			l, js := newLog(b, startServer(b, streams.Config{}))
			filler := make([]byte, 200)
			for i := 1; i <= 128; i++ {
				if _, err := l.Append(ctx, msglog.Send{Conv: "sparse", From: "u1", Cmid: fmt.Sprint("m", i), Body: "hello"}); err != nil {
					b.Fatal(err)
				}
				for k := range n {
					if _, err := js.PublishAsync(subjects.Msg(fmt.Sprint("other", k%500)), filler); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("filler not acked")
				}
			}
			b.ResetTimer()
			for b.Loop() {
				msgs, err := l.Before(ctx, "sparse", 0, 50)
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
// has 20k messages and "small" 1k. The last 1k of big alternate with the 1k
// of small, and every message of either is followed by one filler message
// of 200 other conversations.
func filledLog(b *testing.B) *msglog.Log {
	b.Helper()
	ctx := context.Background()
	l, js := newLog(b, startServer(b, streams.Config{}))
	filler := make([]byte, 100)
	send := func(conv string, i int) {
		if _, err := l.Append(ctx, msglog.Send{Conv: conv, From: "u1", Cmid: fmt.Sprint("m", i), Body: "some text of a typical length, about sixty bytes or so"}); err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishAsync(subjects.Msg(fmt.Sprint("filler", i%200)), filler); err != nil {
			b.Fatal(err)
		}
	}
	for i := 1; i <= 20_000; i++ {
		send("big", i)
		if i > 19_000 {
			send("small", i-19_000)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("filler not acked")
	}
	return l
}

// consumePersist acks every entry on the PERSIST consumer as it comes, a
// persist worker without a store, so that the append's retry check has an
// ack floor near the head.
func consumePersist(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	c, err := js.Consumer(context.Background(), subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		tb.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) { _ = m.Ack() })
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cc.Stop)
}

// BenchmarkDecode is what every reader of the log (fanout, persist, push)
// does per entry: the payload in the log's own layout and its seq header.
func BenchmarkDecode(b *testing.B) {
	data := []byte(`{"id":"m_5t2wq3xkzj4bq7h2m6v9c1d8fa","conv":"c_4k2m9x","seq":12345,"from":"user-00042","cmid":"cm-00042-000123","type":"text","body":"hello there, a message of a typical length","ts":1796000000000}`)
	hdr := nats.Header{msglog.HeaderSeq: []string{"12345"}}
	b.ReportAllocs()
	for b.Loop() {
		if m, err := msglog.Decode(data, hdr); err != nil || m.Seq != 12345 {
			b.Fatal(m, err)
		}
	}
}
