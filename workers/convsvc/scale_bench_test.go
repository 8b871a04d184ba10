package convsvc_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/event"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/blocks"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// The scale benchmarks run once each (-benchtime=1x) on embedded NATS and
// FerretDB and report milliseconds; docs/benchmarks.md has the figures.

// BenchmarkGroupGrowth builds a group of 100,000 members 1,000 at a time
// and reports the members.add latency at 1k, 10k, 50k and 100k members.
func BenchmarkGroupGrowth(b *testing.B) {
	e := newEnv(b, envConfig{})
	owner := "owner"
	g, err := e.cl.Create(ctxT(b), convapi.CreateRequest{User: owner, Kind: natter.KindGroup, Name: "big"})
	if err != nil {
		b.Fatal(err)
	}
	marks := map[int]string{1_000: "add_ms_at_1k", 10_000: "add_ms_at_10k", 50_000: "add_ms_at_50k", 100_000: "add_ms_at_100k"}
	b.ResetTimer()
	for n := 1_000; n <= 100_000; n += 1_000 {
		users := make([]string, 1_000)
		for i := range users {
			users[i] = fmt.Sprintf("m%06d", n-1_000+i)
		}
		if n == 100_000 {
			users = users[:999] // with the owner: 100,000
		}
		start := time.Now()
		if err := e.cl.AddMembers(ctxT(b), owner, g.ID, users); err != nil {
			b.Fatalf("add at %d: %v", n, err)
		}
		if name, ok := marks[n]; ok {
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, name)
		}
	}
	members, err := e.cl.Members(ctxT(b), g.ID)
	if err != nil || len(members) != 100_000 {
		b.Fatalf("%d members (%v)", len(members), err)
	}
}

// BenchmarkManyConversations lists the conversations of a user in 10,000
// (a page of list, the whole list through the client) and times a create
// for that user against one for a user with none.
func BenchmarkManyConversations(b *testing.B) {
	e := newEnv(b, envConfig{})
	const n = 10_000
	user := "many"
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ch {
				c := natter.Conversation{ID: natter.DirectID(user, fmt.Sprintf("p%05d", i)), Kind: natter.KindDirect,
					CreatedBy: user, Members: []string{user, fmt.Sprintf("p%05d", i)}}
				if _, err := e.st.CreateConversation(ctxT(b), c); err != nil {
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
	for i := range 100 { // a user in 100, for the create comparison
		u := fmt.Sprintf("q%03d", i)
		if _, err := e.cl.Create(ctxT(b), convapi.CreateRequest{User: "hundred", Kind: natter.KindDirect, With: u}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	timed := func(fn func() error) float64 {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(start).Microseconds()) / 1000
	}
	var gets []float64
	var all []natter.Conversation
	for range 3 {
		gets = append(gets, timed(func() error {
			_, err := e.cl.Get(ctxT(b), user, natter.DirectID(user, "p00000"))
			return err
		}))
	}
	first := timed(func() error {
		var err error
		all, err = e.cl.List(ctxT(b), user)
		return err
	})
	again := timed(func() error {
		var err error
		all, err = e.cl.List(ctxT(b), user)
		return err
	})
	if len(all) != n {
		b.Fatalf("listed %d", len(all))
	}
	b.ReportMetric(first, "list_all_ms_cold")
	b.ReportMetric(again, "list_all_ms")
	b.ReportMetric(again/float64((n+convapi.ListPageSize-1)/convapi.ListPageSize), "list_page_ms")
	slices.Sort(gets)
	b.ReportMetric(gets[1], "get_ms")
	// Creates alternate between the user in 10,000 and the user in 100;
	// the medians of 25 each.
	var in10k, in100 []float64
	for i := range 25 {
		in10k = append(in10k, timed(func() error {
			_, err := e.cl.Create(ctxT(b), convapi.CreateRequest{User: user, Kind: natter.KindDirect, With: fmt.Sprintf("f%02d", i)})
			return err
		}))
		in100 = append(in100, timed(func() error {
			_, err := e.cl.Create(ctxT(b), convapi.CreateRequest{User: "hundred", Kind: natter.KindDirect, With: fmt.Sprintf("f%02d", i)})
			return err
		}))
	}
	slices.Sort(in10k)
	slices.Sort(in100)
	b.ReportMetric(in10k[12], "create_ms_user_in_10k")
	b.ReportMetric(in100[12], "create_ms_user_in_100")
}

// BenchmarkConcurrentCreates: 20 creators, each creating 100 direct
// conversations with distinct users, against one service instance and
// against two (each with its own Store: its own connections and create
// batches, as two processes have; the first reads the embedded store's
// file directly, as natter dev does, the second through FerretDB, as a
// second process would), with events off and on (on, as in natter dev: the
// conversation_created event is written to the outbox collection,
// published to EVENTS and pulled from the outbox, and the creator's blocks
// are read from the PRESENCE bucket).
func BenchmarkConcurrentCreates(b *testing.B) {
	for _, evs := range []bool{false, true} {
		for _, replicas := range []int{1, 2} {
			b.Run(fmt.Sprintf("events=%v/replicas=%d", evs, replicas), func(b *testing.B) {
				concurrentCreates(b, replicas, evs)
			})
		}
	}
}

func concurrentCreates(b *testing.B, replicas int, evs bool) {
	cmds := &cmdStats{}
	e := newEnv(b, envConfig{monitor: cmds.monitor(), direct: true})
	if evs {
		_ = e.svc.Stop()
		js, err := jetstream.New(e.nc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := streams.Apply(ctxT(b), js, streams.Config{}); err != nil {
			b.Fatal(err)
		}
		e.svcCfg.Events = events.NewPublisher(js)
		if e.svcCfg.Blocks, err = blocks.Open(ctxT(b), js); err != nil {
			b.Fatal(err)
		}
		e.svc = e.startService(b)
	}
	for range replicas - 1 {
		st := storetest.Open(b, store.Config{URI: e.emb.URI(), Monitor: cmds.monitor()})
		svc, err := convsvc.Start(e.connect(b), st, e.svcCfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = svc.Stop() })
	}
	const creators, each = 20, 100
	for n := 0; n < b.N; n++ {
		lat := make([]time.Duration, 0, creators*each)
		var mu sync.Mutex
		var wg sync.WaitGroup
		cpu0 := cpuTime()
		cmds.reset()
		start := time.Now()
		for c := range creators {
			cl := convapi.NewClient(e.connect(b), 0)
			wg.Go(func() {
				for i := range each {
					t0 := time.Now()
					_, err := cl.Create(ctxT(b), convapi.CreateRequest{User: fmt.Sprintf("c%02d", c), Kind: natter.KindDirect,
						With: fmt.Sprintf("w%d_%02d_%03d", n, c, i)})
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		took, cpu := time.Since(start), cpuTime()-cpu0
		if len(lat) == 0 {
			b.FailNow()
		}
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/took.Seconds(), "creates/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		// The CPU of the whole process (NATS, FerretDB, SQLite, services,
		// clients) per create: what a loaded machine changes least.
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu_ms/create")
		// The store's commands per create, and where their time went.
		n, byName := cmds.snapshot()
		b.ReportMetric(float64(n)/float64(len(lat)), "store_cmds/create")
		if os.Getenv("NATTER_BENCH_STORE_TRACE") != "" {
			for _, l := range byName {
				b.Logf("%s", l)
			}
		}
	}
}

// cmdStats counts the store's commands by name and collection, with the
// time each took as the driver saw it (queueing in the store included).
type cmdStats struct {
	mu    sync.Mutex
	colls map[int64]string // by request id, while running
	by    map[string]*cmdStat
	n     int
}

type cmdStat struct {
	n         int
	sum, maxd time.Duration
}

func (c *cmdStats) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by, c.n = map[string]*cmdStat{}, 0
}

func (c *cmdStats) monitor() *event.CommandMonitor {
	c.reset()
	c.colls = map[int64]string{}
	done := func(id int64, name string, d time.Duration) {
		c.mu.Lock()
		defer c.mu.Unlock()
		key := name + " " + c.colls[id]
		delete(c.colls, id)
		st := c.by[key]
		if st == nil {
			st = &cmdStat{}
			c.by[key] = st
		}
		st.n++
		st.sum += d
		st.maxd = max(st.maxd, d)
		c.n++
	}
	return &event.CommandMonitor{
		Started: func(_ context.Context, ev *event.CommandStartedEvent) {
			coll := ""
			if v, err := ev.Command.LookupErr(ev.CommandName); err == nil {
				coll, _ = v.StringValueOK()
			}
			c.mu.Lock()
			c.colls[ev.RequestID] = coll
			c.mu.Unlock()
		},
		Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
			done(ev.RequestID, ev.CommandName, ev.Duration)
		},
		Failed: func(_ context.Context, ev *event.CommandFailedEvent) {
			done(ev.RequestID, ev.CommandName+"(failed)", ev.Duration)
		},
	}
}

// snapshot returns the number of commands since the reset and a line per
// command and collection: count, mean and max time.
func (c *cmdStats) snapshot() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, st := range c.by {
		out = append(out, fmt.Sprintf("%-28s n=%6d mean=%7.2fms max=%7.1fms total=%6.0fms", k, st.n,
			float64(st.sum.Microseconds())/1000/float64(st.n), float64(st.maxd.Microseconds())/1000, float64(st.sum.Microseconds())/1000))
	}
	slices.Sort(out)
	return c.n, out
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
