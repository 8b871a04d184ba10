package test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/workers/push"
	"github.com/natter-im/natter/workers/push/pushtest"
)

// BenchmarkPushRole measures notifications per second end to end: one
// message is appended to each of 100 direct conversations at once (the
// log's Append, as the edge and the service API do, 100 goroutines: the
// edge's per-connection order would make the sends the bottleneck), whose
// other member is offline with an APNs device, and the op ends when the
// APNs stand-in has accepted all 100 notifications (the push role's reads
// of members, registrations, leases and badges, and its sends).
// send-ms/op is the part of an op until the 100 appends were acked,
// tail-ms/op the rest: the push role finishing after the last one. direct
// is the same-run baseline: 100 sends of the APNs client to the same
// stand-in, 32 at once, as the role sends them.
//
//	go test -run '^$' -bench BenchmarkPushRole -benchtime 10x -count 3 ./test/
func BenchmarkPushRole(b *testing.B) {
	const n, senders = 100, 10
	e := newPushEnv(b)
	toks := make([]string, n)
	convs := make([]string, n)
	conns := make([]*rawConn, senders)
	for s := range senders {
		conns[s] = mustDial(b, e.n, "bsender"+strconv.Itoa(s))
	}
	for i := range n {
		user := "brcpt" + strconv.Itoa(i)
		toks[i] = pushtest.Token()
		e.device(b, user, "phone", apnsFields(toks[i])).conn.Close()
		convs[i] = conns[i%senders].direct(user).ID
	}
	for i := range n {
		e.online(b, "brcpt"+strconv.Itoa(i))
	}
	mlog, err := msglog.New(ctx10(b), e.nc, e.js, msglog.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("role", func(b *testing.B) {
		start := e.apns.Count()
		run := strconv.FormatInt(time.Now().UnixNano(), 36) // cmids of this run
		var sending, tail time.Duration
		b.ResetTimer()
		for it := range b.N {
			t0 := time.Now()
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					send := msglog.Send{Conv: convs[i], From: "bsender" + strconv.Itoa(i%senders), Cmid: fmt.Sprintf("b%s-%d-%d", run, it, i), Body: "x", FirstAttempt: true}
					if _, err := mlog.Append(ctx10(b), send); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			t1 := time.Now()
			sending += t1.Sub(t0)
			want := start + (it+1)*n
			testenv.CheckFor(b, 60*time.Second, time.Millisecond, func() error {
				if got := e.apns.Count(); got < want {
					return fmt.Errorf("%d of %d notifications", got, want)
				}
				return nil
			})
			tail += time.Since(t1)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "notifications/s")
		b.ReportMetric(float64(sending.Milliseconds())/float64(b.N), "send-ms/op")
		b.ReportMetric(float64(tail.Milliseconds())/float64(b.N), "tail-ms/op")
	})
	b.Run("direct", func(b *testing.B) {
		p, err := push.NewAPNs(e.apns.Config())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		note := push.Notification{Conv: convs[0], Seq: 1, From: "bsender0", ID: "m", Text: push.DefaultText, Badge: 1}
		b.ResetTimer()
		for range b.N {
			sem := make(chan struct{}, 32)
			var wg sync.WaitGroup
			for i := range n {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if err := p.Send(ctx, pushreg.Device{User: "u", Device: "d", Registration: pushreg.Registration{Provider: pushreg.APNs, Token: toks[i]}}, note); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "notifications/s")
	})
}
