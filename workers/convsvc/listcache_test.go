package convsvc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

// listStats reads the list cache's counters of one service instance from
// micro's stats (the data of its list endpoint).
func listStats(t testing.TB, svc micro.Service) convsvc.ListCacheStats {
	t.Helper()
	for _, ep := range svc.Stats().Endpoints {
		if ep.Subject != subjects.ConvEndpoint(convapi.OpList) {
			continue
		}
		var s convsvc.ListCacheStats
		if err := json.Unmarshal(ep.Data, &s); err != nil {
			t.Fatalf("list endpoint data %s: %v", ep.Data, err)
		}
		return s
	}
	t.Fatal("no list endpoint")
	return convsvc.ListCacheStats{}
}

// listIDs returns the ids of user's conversations through the service.
func listIDs(t testing.TB, e *env, user string) []string {
	t.Helper()
	convs, err := e.cl.List(ctxT(t), user)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	return ids
}

// newListCache is a list cache on its own connection loading from e's
// store through gate (nil: straight), as another service instance's would.
// A flush of the connection returned is a barrier: the notices published
// before it have reached the cache.
func newListCache(t *testing.T, e *env, ttl time.Duration, max, buffer int, gate func(user string)) (*convsvc.ListCache, *nats.Conn) {
	t.Helper()
	nc := e.connect(t)
	load := func(ctx context.Context, user string) ([]string, error) {
		ids, err := e.st.UserConversations(ctx, user)
		if gate != nil {
			gate(user)
		}
		return ids, err
	}
	c, err := convsvc.NewListCache(nc, load, ttl, max, buffer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c, nc
}

func getIDs(t testing.TB, c *convsvc.ListCache, user string) []string {
	t.Helper()
	ids, err := c.Get(ctxT(t), user)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestListCacheService: the service answers a user's repeated lists from
// its cache, and a change drops the list before the reply.
func TestListCacheService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	u := names("alice", "bob")
	d := direct(t, e, u[0], u[1])
	before := listStats(t, e.svc)
	for range 3 {
		if got := listIDs(t, e, u[0]); !slices.Equal(got, []string{d}) {
			t.Fatalf("list %v, want [%s]", got, d)
		}
	}
	s := listStats(t, e.svc)
	if s.Loads-before.Loads != 1 || s.Hits-before.Hits != 2 || s.Entries < 1 {
		t.Fatalf("stats %+v (before %+v), want 1 load and 2 hits", s, before)
	}
	// The membership checks of get read the membership document, not
	// the lists.
	if _, err := e.cl.Get(ctxT(t), u[0], d); err != nil {
		t.Fatal(err)
	}
	if s2 := listStats(t, e.svc); s2.Loads != s.Loads || s2.Hits != s.Hits {
		t.Fatalf("stats after get %+v, want those of %+v", s2, s)
	}
	// Read your writes: the list right after a create has it.
	g := group(t, e, u[1], u[0])
	if got, want := listIDs(t, e, u[0]), slices.Sorted(slices.Values([]string{d, g})); !slices.Equal(got, want) {
		t.Fatalf("list after create %v, want %v", got, want)
	}
	if err := e.cl.RemoveMembers(ctxT(t), u[0], g, []string{u[0]}); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, e, u[0]); !slices.Equal(got, []string{d}) {
		t.Fatalf("list after leaving %v, want [%s]", got, d)
	}
	wantCode(t, func() error { _, err := e.cl.Get(ctxT(t), u[0], g); return err }(), convapi.CodeNotMember)
}

// TestListCacheReplicas: a change made through one instance drops the
// list cached by the other before the change's reply, so every list after
// it sees the change, whichever instance answers.
func TestListCacheReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	second := e.startService(t)
	u := names("alice", "bob", "carol")
	a := u[0]
	d := direct(t, e, a, u[1])
	// Both instances cache alice's list: list until each has had a hit.
	testenv.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
		if got := listIDs(t, e, a); !slices.Equal(got, []string{d}) {
			t.Fatalf("list %v, want [%s]", got, d)
		}
		if h1, h2 := listStats(t, e.svc).Hits, listStats(t, second).Hits; h1 == 0 || h2 == 0 {
			return fmt.Errorf("hits per instance %d and %d", h1, h2)
		}
		return nil
	})
	inv1, inv2 := listStats(t, e.svc).Invalidations, listStats(t, second).Invalidations
	steps := []struct {
		name   string
		change func() string // returns the group changed
		in     bool          // alice is in it afterwards
	}{
		{"create", func() string { return group(t, e, u[2], a) }, true},
		{"remove", func() string {
			g := group(t, e, u[2])
			if err := e.cl.AddMembers(ctxT(t), u[2], g, []string{a}); err != nil {
				t.Fatal(err)
			}
			for range 10 { // both instances cache alice in g
				if got := listIDs(t, e, a); !slices.Contains(got, g) {
					t.Fatalf("list after add %v lacks %s", got, g)
				}
			}
			if err := e.cl.RemoveMembers(ctxT(t), u[2], g, []string{a}); err != nil {
				t.Fatal(err)
			}
			return g
		}, false},
	}
	for _, st := range steps {
		g := st.change()
		for i := range 20 {
			if got := listIDs(t, e, a); slices.Contains(got, g) != st.in {
				t.Fatalf("%s: list %d after the change %v: %s in it = %v, want %v", st.name, i, got, g, !st.in, st.in)
			}
		}
	}
	// Each instance got the other's notices.
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if n1, n2 := listStats(t, e.svc).Invalidations-inv1, listStats(t, second).Invalidations-inv2; n1 < 4 || n2 < 4 {
			return fmt.Errorf("invalidations per instance %d and %d, want 4 each (2 creates, add, remove)", n1, n2)
		}
		return nil
	})
}

// TestListCache runs the cache as another instance would, next to the
// service that makes the changes.
func TestListCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})

	t.Run("another instance's change invalidates", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob")
		c, nc := newListCache(t, e, time.Hour, 100, 64, nil) // no TTL help
		if got := getIDs(t, c, u[0]); len(got) != 0 {
			t.Fatalf("list %v, want none", got)
		}
		g := group(t, e, u[1], u[0])
		testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
			if got := getIDs(t, c, u[0]); !slices.Equal(got, []string{g}) {
				return fmt.Errorf("list %v, want [%s]", got, g)
			}
			return nil
		})
		if s := c.Stats(); s.Loads != 2 || s.Invalidations == 0 {
			t.Fatalf("stats %+v, want 2 loads and an invalidation", s)
		}
		// A notice for other users keeps alice's list.
		group(t, e, u[1])
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		getIDs(t, c, u[0])
		if s := c.Stats(); s.Loads != 2 {
			t.Fatalf("stats %+v: bob's notice dropped alice's list", s)
		}
	})

	t.Run("load racing a change is not kept", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob")
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		c, nc := newListCache(t, e, time.Hour, 100, 64, func(user string) {
			once.Do(func() { close(entered); <-release }) // the first load read the store, then waits
		})
		first := make(chan []string, 1)
		go func() {
			ids, err := c.Get(context.Background(), u[0])
			if err != nil {
				t.Error(err)
			}
			first <- ids
		}()
		<-entered
		g := group(t, e, u[1], u[0]) // its notice reaches the cache during the load
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		close(release)
		if got := <-first; len(got) != 0 {
			t.Fatalf("the racing load read %v, want the list before the change", got)
		}
		if got := getIDs(t, c, u[0]); !slices.Equal(got, []string{g}) {
			t.Fatalf("list after the race %v, want [%s]: the stale load was kept", got, g)
		}
		if s := c.Stats(); s.Loads != 2 || s.Entries != 1 {
			t.Fatalf("stats %+v, want 2 loads", s)
		}
	})

	t.Run("concurrent misses make one load", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob")
		d := direct(t, e, u[0], u[1])
		c, _ := newListCache(t, e, time.Hour, 100, 64, nil)
		const n = 64
		atOnce(t, n, func() error {
			ids, err := c.Get(context.Background(), u[0])
			if err == nil && !slices.Equal(ids, []string{d}) {
				err = fmt.Errorf("list %v", ids)
			}
			return err
		})
		if s := c.Stats(); s.Loads != 1 || s.Hits+s.Shared != n-1 {
			t.Fatalf("stats %+v, want 1 load for %d callers", s, n)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob", "carol")
		c, _ := newListCache(t, e, time.Hour, 2, 64, nil)
		for _, user := range []string{u[0], u[1], u[0], u[2]} { // bob is the least recently used
			getIDs(t, c, user)
		}
		if s := c.Stats(); s.Entries != 2 || s.Evictions != 1 || s.Loads != 3 {
			t.Fatalf("stats %+v", s)
		}
		getIDs(t, c, u[0])
		if s := c.Stats(); s.Loads != 3 {
			t.Fatalf("stats %+v: the recently used list was evicted", s)
		}
		getIDs(t, c, u[1])
		if s := c.Stats(); s.Loads != 4 || s.Entries != 2 {
			t.Fatalf("stats %+v: bob's list was not evicted", s)
		}
	})

	t.Run("ttl", func(t *testing.T) {
		t.Parallel()
		u := names("alice")
		c, _ := newListCache(t, e, 50*time.Millisecond, 100, 64, nil)
		testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
			getIDs(t, c, u[0])
			if s := c.Stats(); s.Loads < 2 {
				return fmt.Errorf("stats %+v: not reloaded", s)
			}
			return nil
		})
	})

}

// TestListCacheFlush: a notice naming nobody (an older instance) and
// notices dropped by a full channel drop every list. Its own store and
// NATS: the flushes would reach other tests' caches.
func TestListCacheFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	t.Run("notice naming nobody flushes", func(t *testing.T) {
		u := names("alice")
		c, _ := newListCache(t, e, time.Hour, 100, 64, nil)
		getIDs(t, c, u[0])
		if err := e.nc.Publish(subjects.MembersChanged("c_"+u[0]), nil); err != nil { // an older instance
			t.Fatal(err)
		}
		testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
			getIDs(t, c, u[0])
			if s := c.Stats(); s.Flushes == 0 || s.Loads != 2 {
				return fmt.Errorf("stats %+v: not flushed", s)
			}
			return nil
		})
	})

	t.Run("dropped notices flush", func(t *testing.T) {
		u := names("alice")
		c, _ := newListCache(t, e, time.Hour, 100, 2, nil) // room for 2 notices
		getIDs(t, c, u[0])
		body := []byte(`{"users":["` + u[0] + `x"]}`) // other users: no invalidation
		testenv.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
			for range 200 { // faster than the ticker drains 2 at a time
				if err := e.nc.Publish(subjects.MembersChanged("c_"+u[0]), body); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			getIDs(t, c, u[0])
			if s := c.Stats(); s.Flushes == 0 {
				return fmt.Errorf("stats %+v: no flush", s)
			}
			return nil
		})
	})
}

// TestListCacheReconnect: notices sent while the connection is down are
// lost, so the first lookup after a reconnect drops every list.
func TestListCacheReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	u := names("alice")
	c, _ := newListCache(t, e, time.Hour, 100, 64, nil)
	getIDs(t, c, u[0])
	getIDs(t, c, u[0])
	if s := c.Stats(); s.Loads != 1 || s.Hits != 1 {
		t.Fatalf("stats %+v", s)
	}
	e.restartNATS(t)
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		getIDs(t, c, u[0])
		if s := c.Stats(); s.Flushes == 0 || s.Loads != 2 {
			return fmt.Errorf("stats %+v: not flushed", s)
		}
		return nil
	})
	// The service reconnected too and answers from its own flushed cache.
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		_, err := e.cl.List(ctxT(t), u[0])
		return err
	})
}

// TestNoticeBodies: a change of many users is split into notices that each
// fit the budget and together name every user once.
func TestNoticeBodies(t *testing.T) {
	t.Parallel()
	users := make([]string, 1000)
	for i := range users {
		users[i] = strings.Repeat("u", 50) + fmt.Sprint(i)
	}
	for _, tc := range []struct {
		users  []string
		budget int
		want   int
	}{
		{nil, 100, 1},
		{users[:1], 10, 1}, // one id always fits
		{users[:3], 1 << 16, 1},
		{users, 1 << 16, 1},
		{users, 4096, 14},
	} {
		bodies := convsvc.NoticeBodies(tc.users, true, tc.budget)
		var got []string
		for _, b := range bodies {
			if len(b) > tc.budget && len(bodies) > 1 {
				t.Fatalf("body of %d bytes over the budget %d", len(b), tc.budget)
			}
			var n convapi.Notice
			if err := json.Unmarshal(b, &n); err != nil || n.Users == nil || !n.Pushed {
				t.Fatalf("body %s: %v", b, err)
			}
			got = append(got, n.Users...)
		}
		if len(bodies) != tc.want || !slices.Equal(got, tc.users) && len(tc.users) > 0 {
			t.Fatalf("%d users, budget %d: %d bodies naming %d users, want %d bodies", len(tc.users), tc.budget, len(bodies), len(got), tc.want)
		}
	}
}

// TestListCacheLoadSlots: at most StoreLoads store loads run at once; a
// load queued behind them gets its whole timeout once it has a slot (the
// wait does not count), and its list is kept for the caller that gave up
// meanwhile, whose retry is a hit.
func TestListCacheLoadSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	nc := e.connect(t)
	const timeout = 300 * time.Millisecond
	var running, most atomic.Int32
	load := func(ctx context.Context, user string) ([]string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if strings.HasPrefix(user, "slow") {
			<-ctx.Done() // holds its slot until its timeout
			return nil, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return []string{"c_" + user}, nil
	}
	c, err := convsvc.NewListCacheTimeout(nc, load, time.Hour, 1000, 64, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	const slow = 3 * convsvc.StoreLoads
	for i := range slow {
		go func() { _, _ = c.Get(context.Background(), fmt.Sprintf("slow%d", i)) }()
	}
	testenv.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if n := running.Load(); n != convsvc.StoreLoads {
			return fmt.Errorf("%d loads running, want %d", n, convsvc.StoreLoads)
		}
		return nil
	})
	// Queued behind the slow loads (~3 timeouts): its caller gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "queued"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get while the slots are taken: %v, want the caller's deadline", err)
	}
	// Its load goes on once it has a slot, and is kept: the retry is a hit.
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if s := c.Stats(); s.Entries != 1 {
			return fmt.Errorf("stats %+v: the queued list is not kept", s)
		}
		return nil
	})
	before := c.Stats()
	if got := getIDs(t, c, "queued"); !slices.Equal(got, []string{"c_queued"}) {
		t.Fatalf("list %v", got)
	}
	if s := c.Stats(); s.Loads != before.Loads || s.Hits != before.Hits+1 {
		t.Fatalf("stats %+v (before the retry %+v), want a hit", s, before)
	}
	if m := most.Load(); m > convsvc.StoreLoads {
		t.Fatalf("%d loads ran at once, want at most %d", m, convsvc.StoreLoads)
	}
}
