package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// BenchmarkManyConversationsEdge measures `sync {}` and `conv.list` end to
// end (a WebSocket client, the edge, the conversations service, the log,
// the cursors bucket) for a user in 100 and in 10,000 direct conversations,
// each with one message: the whole list in one reply (no page_size) and
// page by page (page_size, following next: the latency of each page and of
// the whole pass), warm (the service instance has the user's list and
// every summary) and cold (after a change notice naming nobody, which drops
// every cached list and summary exactly as a fresh instance starts without
// them; for the paged runs before the first page of a pass). Before them, the
// first listing ever (conv.list-paged-first: neither the instance nor the
// SUMMARIES bucket has a summary yet).
//
// NATTER_BENCH_PAGE_SIZE sets the page size (default 500, the SDK's);
// NATTER_BENCH_PAGED_ONLY=1 leaves out the whole replies (no page_size);
// NATTER_BENCH_WARM_PROFILE=file writes a CPU profile of the warm runs
// (file.<convs>.<what>) and makes them 30.
//
// Run it with: go test -run '^$' -bench BenchmarkManyConversationsEdge -benchtime 1x -timeout 30m ./test/
func BenchmarkManyConversationsEdge(b *testing.B) {
	size := protocol.MaxPageSize
	if v := os.Getenv("NATTER_BENCH_PAGE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > protocol.MaxPageSize {
			b.Fatalf("NATTER_BENCH_PAGE_SIZE=%q: want 1..%d", v, protocol.MaxPageSize)
		}
		size = n
	}
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("convs=%d", n), func(b *testing.B) { benchManyConvsEdge(b, n, size) })
	}
}

func benchManyConvsEdge(b *testing.B, n, size int) {
	m := newMesh(b, meshOpts{})
	const user = "many"
	ctx := context.Background()
	nc := testenv.Connect(b, m.dev.NATSURL())
	log, err := msglog.New(ctx, nc, testenv.JetStream(b, nc), msglog.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	ch := make(chan int)
	// 32 at a time: the store batches concurrent creates, so the fill of
	// 10,000 takes seconds rather than minutes on a loaded machine. A
	// failed step is retried (the same conversation and cmid: idempotent).
	retry := func(fn func() error) {
		var err error
		for range 5 {
			if err = fn(); err == nil {
				return
			}
		}
		b.Error(err)
	}
	for range 32 {
		wg.Go(func() {
			for i := range ch {
				peer := fmt.Sprintf("p%05d", i)
				c := natter.Conversation{ID: natter.DirectID(user, peer), Kind: natter.KindDirect, CreatedBy: user, Members: []string{user, peer}}
				retry(func() error {
					_, err := m.dev.Store().CreateConversation(ctx, c)
					if errors.Is(err, store.ErrExists) {
						err = nil
					}
					return err
				})
				retry(func() error {
					_, err := log.Append(ctx, msglog.Send{Conv: c.ID, From: user, Cmid: "m1", Body: "hello", FirstAttempt: true})
					return err
				})
			}
		})
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	// Let the persist worker store the messages first: its writes would
	// share the store with the cold lists.
	testenv.CheckFor(b, 10*time.Minute, time.Second, func() error {
		if got, err := m.dev.Store().CountMessages(ctx, ""); err != nil || got < int64(n) {
			return fmt.Errorf("%d of %d messages persisted (%v)", got, n, err)
		}
		return nil
	})
	c := mustDial(b, m.dev, user)
	seq := 0
	// op sends frame (with its id and page) and returns how long its reply
	// took, how many conversations it listed and its next (-1: an error).
	op := func(frame, page string) (time.Duration, int, string) {
		seq++
		id := fmt.Sprint("r", seq)
		start := time.Now()
		c.write(fmt.Sprintf(frame, id, page))
		_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
		for {
			_, data, err := c.conn.ReadMessage()
			if err != nil {
				b.Fatalf("read: %v", err)
			}
			f, err := protocol.DecodeServer(data)
			if err != nil {
				b.Fatal(err)
			}
			if f.T == protocol.FrameErr {
				b.Logf("%s: error after %v: %+v", frame, time.Since(start), *f.Err)
				return time.Since(start), -1, ""
			}
			if f.T != protocol.FrameRes || f.ID != id {
				continue
			}
			took := time.Since(start)
			var res struct {
				Convs []struct {
					Head uint64 `json:"head"`
				} `json:"convs"`
				Next string `json:"next"`
			}
			if err := json.Unmarshal(f.Data, &res); err != nil {
				b.Fatal(err)
			}
			for _, cv := range res.Convs {
				if cv.Head != 1 {
					b.Fatalf("%s: a head of %d, want 1", frame, cv.Head)
				}
			}
			return took, len(res.Convs), res.Next
		}
	}
	flush := func() {
		if err := nc.Publish(subjects.MembersChanged("nobody"), nil); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	ps := strconv.Itoa(size)
	// The first listing ever: no instance and no SUMMARIES bucket has the
	// summaries yet (each page loads its conversations from the store and
	// writes them back to the bucket).
	b.ResetTimer()
	var first, firstPages []time.Duration
	for page := ""; ; {
		arg := ""
		if page != "" {
			arg = fmt.Sprintf(`,"page":%q`, page)
		}
		t, k, next := op(`{"op":"conv.list","id":"%s","page_size":`+ps+`%s}`, arg)
		for tries := 1; k < 0; tries++ {
			// unavailable: a page of 500 store lookups may outlast the
			// store's timeout on a loaded machine; retry as a client does
			// (the service kept what it read).
			if tries == 5 {
				b.Fatal("the first conv.list failed 5 times")
			}
			var more time.Duration
			more, k, next = op(`{"op":"conv.list","id":"%s","page_size":`+ps+`%s}`, arg)
			t += more
		}
		firstPages = append(firstPages, t)
		if next == "" {
			break
		}
		page = next
	}
	var sum time.Duration
	for _, t := range firstPages {
		sum += t
	}
	first = append(first, sum)
	b.ReportMetric(pct(first, 50), "conv.list-paged-first-ms")
	b.ReportMetric(pct(firstPages, 99), "conv.list-paged-first-page-p99-ms")
	type run struct{ name, frame string }
	runs := []run{
		{"sync-paged", `{"op":"sync","id":"%s","cursors":{},"page_size":` + ps + `%s}`},
		{"conv.list-paged", `{"op":"conv.list","id":"%s","page_size":` + ps + `%s}`},
		{"sync", `{"op":"sync","id":"%s","cursors":{}%s}`},
		{"conv.list", `{"op":"conv.list","id":"%s"%s}`},
	}
	for _, r := range runs {
		paged := strings.HasSuffix(r.name, "-paged")
		if !paged && os.Getenv("NATTER_BENCH_PAGED_ONLY") != "" {
			continue
		}
		for _, cold := range []bool{true, false} {
			passes := 10
			if cold {
				passes = 3
			}
			var lat, pages []time.Duration
			failed := 0
			if prof := os.Getenv("NATTER_BENCH_WARM_PROFILE"); prof != "" && !cold {
				// A CPU profile of the warm runs alone (the fill dominates
				// -cpuprofile).
				f, err := os.Create(fmt.Sprintf("%s.%d.%s", prof, n, r.name))
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				passes = 30
			}
			cpu0 := processCPU()
		pass:
			for range passes {
				if cold {
					flush()
				}
				var took time.Duration
				got, page := 0, ""
				for {
					arg := ""
					if page != "" {
						arg = fmt.Sprintf(`,"page":%q`, page)
					}
					t, k, next := op(r.frame, arg)
					if k < 0 {
						failed++
						continue pass
					}
					took += t
					got += k
					pages = append(pages, t)
					if !paged || next == "" {
						break
					}
					page = next
				}
				if got != n {
					b.Fatalf("%s listed %d, want %d", r.name, got, n)
				}
				lat = append(lat, took)
			}
			cpu := processCPU() - cpu0
			pprof.StopCPUProfile() // no-op when not profiling
			what := r.name
			if cold {
				what += "-cold"
			}
			if failed > 0 {
				b.ReportMetric(float64(failed), what+"-failed")
			}
			if len(lat) > 0 {
				b.ReportMetric(pct(lat, 50), what+"-p50-ms")
				b.ReportMetric(pct(lat, 99), what+"-p99-ms")
			}
			if paged && len(pages) > 0 {
				b.ReportMetric(pct(pages, 50), what+"-page-p50-ms")
				b.ReportMetric(pct(pages, 99), what+"-page-p99-ms")
				// The CPU of the whole process (client, edge, service,
				// NATS, store) per page: what the load changes least.
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(pages)), what+"-cpu-ms/page")
			}
		}
	}
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
