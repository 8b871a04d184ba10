package test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

func jsFor(b testing.TB, m *mesh) jetstream.JetStream {
	return testenv.JetStream(b, testenv.Connect(b, m.dev.NATSURL()))
}

// BenchmarkCore measures the messaging core end to end on one natter dev
// (embedded NATS and FerretDB, every role, one edge) through the Go SDK:
//
//   - send->ack and send->deliver p50/p99 at a fixed 1,000 msg/s over 20
//     direct conversations for 5 s;
//   - persisted msgs/s: 20 senders flat out, from the first send until
//     MongoDB holds every message.
//
// Run it with: go tool task bench:core (go test -run '^$' -bench BenchmarkCore -benchtime 1x ./test/).
func BenchmarkCore(b *testing.B) {
	ec := edgeConfig()
	m := newMesh(b, meshOpts{edge: &ec})
	url := []string{wsURL(m.dev)}
	const pairs = 20
	type pair struct {
		from, to *client.Client
		conv     string
	}
	ps := make([]pair, pairs)
	ctx := context.Background()
	for i := range ps {
		from := sdk(b, fmt.Sprint("bs", i), client.Config{URLs: url, AutoAck: -1})
		to := sdk(b, fmt.Sprint("br", i), client.Config{URLs: url, AutoAck: -1})
		conv, err := from.CreateDirect(ctx, fmt.Sprint("br", i))
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = pair{from, to, conv.ID}
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.Run("fixed-1000/s", func(b *testing.B) {
			const rate, dur = 1000, 5 * time.Second
			total := int(rate * dur / time.Second)
			var mu sync.Mutex
			var ackLat, dlvLat []time.Duration
			var wg sync.WaitGroup
			for i := range ps {
				wg.Add(1)
				go func(p pair, n int) { // receiver
					defer wg.Done()
					for k := 0; k < n; k++ {
						select {
						case msg := <-p.to.Messages():
							sent, _ := strconv.ParseInt(strings.SplitN(msg.Body, " ", 2)[0], 10, 64)
							d := time.Since(time.Unix(0, sent))
							mu.Lock()
							dlvLat = append(dlvLat, d)
							mu.Unlock()
						case <-time.After(30 * time.Second):
							b.Errorf("receiver %s got %d of %d", p.conv, k, n)
							return
						}
					}
				}(ps[i], total/pairs)
			}
			// Open loop: one send every 1ms, round-robin over the pairs,
			// each in its own goroutine so a slow ack does not delay the schedule.
			tick := time.NewTicker(time.Second / rate)
			var sends sync.WaitGroup
			for k := 0; k < total; k++ {
				<-tick.C
				p := ps[k%pairs]
				sends.Add(1)
				go func() {
					defer sends.Done()
					start := time.Now()
					if _, err := p.from.Send(ctx, p.conv, fmt.Sprint(start.UnixNano(), " payload-128-bytes-", strings.Repeat("x", 90))); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					ackLat = append(ackLat, time.Since(start))
					mu.Unlock()
				}()
			}
			tick.Stop()
			sends.Wait()
			wg.Wait()
			b.ReportMetric(pct(ackLat, 50), "ack-p50-ms")
			b.ReportMetric(pct(ackLat, 99), "ack-p99-ms")
			b.ReportMetric(pct(dlvLat, 50), "deliver-p50-ms")
			b.ReportMetric(pct(dlvLat, 99), "deliver-p99-ms")
		})
		b.Run("persist-flat-out", func(b *testing.B) {
			before, _ := m.dev.Store().CountMessages(ctx, "")
			const each = 500
			start := time.Now()
			var wg sync.WaitGroup
			for i := range ps {
				wg.Add(1)
				go func(p pair) {
					defer wg.Done()
					for k := 0; k < each; k++ {
						if _, err := p.from.Send(ctx, p.conv, "flat out"); err != nil {
							b.Error(err)
							return
						}
					}
				}(ps[i])
			}
			wg.Wait()
			acked := time.Since(start)
			// Poll the PERSIST consumer (cheap), not MongoDB: a count on
			// FerretDB scans the collection and would eat the CPU measured.
			js := jsFor(b, m)
			for {
				c, err := js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
				if err != nil {
					b.Fatal(err)
				}
				info, err := c.Info(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if info.NumPending == 0 && info.NumAckPending == 0 {
					break
				}
				if time.Since(start) > 120*time.Second {
					b.Fatalf("persist backlog %d+%d after 120s", info.NumPending, info.NumAckPending)
				}
				time.Sleep(10 * time.Millisecond)
			}
			stored := time.Since(start)
			if n, _ := m.dev.Store().CountMessages(ctx, ""); n != before+int64(each*pairs) {
				b.Fatalf("stored %d, want %d", n-before, each*pairs)
			}
			b.ReportMetric(float64(each*pairs)/acked.Seconds(), "acked-msgs/s")
			b.ReportMetric(float64(each*pairs)/stored.Seconds(), "persisted-msgs/s")
		})
	}
}

// pct is the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Microseconds()) / 1000
}
