package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// BenchmarkCreateListSize is the cost of creating a direct conversation for
// a user already in 100 conversations and for one in 10,000 (1x vs 100x),
// on the embedded store. Run with
//
//	go test -count=1 -run '^$' -bench 'CreateListSize' -benchtime 1x -timeout 600s ./workers/store/
//
// It fills both users' lists through CreateConversation (8 at a time),
// then alternates 100 creates of each, one at a time, and reports the
// medians and 90th percentiles (ms) and the ratio of the medians
// (in10k/in100: 1.0 is flat).
func BenchmarkCreateListSize(b *testing.B) {
	s := storetest.New(b)
	ctx := context.Background()
	direct := func(u, w string) natter.Conversation {
		return natter.Conversation{ID: natter.DirectID(u, w), Kind: natter.KindDirect, CreatedBy: u, Members: []string{u, w}}
	}
	fillDirect(b, s, "in10k", 10_000)
	fillDirect(b, s, "in100", 100)
	for i := 0; i < b.N; i++ {
		var in10k, in100 []float64
		for j := range 100 {
			for _, u := range []string{"in10k", "in100"} {
				start := time.Now()
				if _, err := s.CreateConversation(ctx, direct(u, fmt.Sprintf("new%d_%03d", i, j))); err != nil {
					b.Fatal(err)
				}
				ms := float64(time.Since(start).Microseconds()) / 1000
				if u == "in10k" {
					in10k = append(in10k, ms)
				} else {
					in100 = append(in100, ms)
				}
			}
		}
		slices.Sort(in10k)
		slices.Sort(in100)
		b.ReportMetric(in100[50], "p50_ms_in100")
		b.ReportMetric(in10k[50], "p50_ms_in10k")
		b.ReportMetric(in100[90], "p90_ms_in100")
		b.ReportMetric(in10k[90], "p90_ms_in10k")
		b.ReportMetric(in10k[50]/in100[50], "in10k/in100")
	}
}

// fillDirect creates n direct conversations of user, 8 at a time.
func fillDirect(b *testing.B, s *store.Store, user string, n int) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ch {
				w := fmt.Sprintf("p%05d", i)
				c := natter.Conversation{ID: natter.DirectID(user, w), Kind: natter.KindDirect, CreatedBy: user, Members: []string{user, w}}
				if _, err := s.CreateConversation(ctx, c); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if ids, err := s.UserConversations(ctx, user); err != nil || len(ids) != n {
		b.Fatalf("%s is in %d conversations (%v), want %d", user, len(ids), err, n)
	}
}
