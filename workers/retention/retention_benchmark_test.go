package retention_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/retention"
)

// BenchmarkSweep measures the sweeper on the embedded store with n
// conversations of 3 messages each (a 1-day limit on direct ones): the
// first sweep (it finds them all through the log's tail and checks each),
// idle sweeps a minute apart (nothing due: they read the minutes'
// schedule documents only; the median of five), and the sweep a day later, when every
// conversation is due and loses its 2 older messages. Run once per size:
//
//	go test -run '^$' -bench BenchmarkSweep -benchtime 1x ./workers/retention/
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("convs=%d", n), func(b *testing.B) {
			for range b.N {
				sweepOnce(b, n)
			}
		})
	}
}

func sweepOnce(b *testing.B, n int) {
	e := newEnv(b)
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				conv := fmt.Sprintf("d_bench%05d", i)
				for j := range 3 {
					if _, err := e.log.Append(ctx, msglog.Send{Conv: conv, From: "alice", Cmid: fmt.Sprint("c", j), Body: "x", FirstAttempt: true}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	e.archived(b)
	s, err := retention.New(ctx, e.st, e.log, e.js, retention.Config{Direct: retention.Policy{Days: 1}, Now: e.clock})
	if err != nil {
		b.Fatal(err)
	}
	sweep := func(what string) retention.Report {
		start := time.Now()
		rep, err := s.Sweep(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if f := rep.Count(retention.Failed); f > 0 {
			b.Fatalf("%s: %d failed", what, f)
		}
		d := time.Since(start)
		b.ReportMetric(float64(d.Microseconds())/1000, what+"-ms")
		if len(rep.Results) > 0 {
			b.ReportMetric(float64(d.Microseconds())/float64(len(rep.Results)), what+"-us/conv")
		}
		return rep
	}
	b.ResetTimer()
	if rep := sweep("first"); len(rep.Results) != n || rep.Tailed != 3*n {
		b.Fatalf("first sweep checked %d, tailed %d", len(rep.Results), rep.Tailed)
	}
	// Idle: five sweeps a minute apart, the median reported.
	var idle []time.Duration
	for range 5 {
		e.advance(time.Minute)
		start := time.Now()
		rep, err := s.Sweep(ctx)
		if err != nil || len(rep.Results) != 0 {
			b.Fatalf("idle sweep checked %d: %v", len(rep.Results), err)
		}
		idle = append(idle, time.Since(start))
	}
	slices.Sort(idle)
	b.ReportMetric(float64(idle[2].Microseconds())/1000, "idle-ms")
	e.advance(24 * time.Hour)
	if rep := sweep("due"); rep.Count(retention.Expired) != n {
		b.Fatalf("due sweep expired %d of %d", rep.Count(retention.Expired), n)
	}
	b.StopTimer()
}
