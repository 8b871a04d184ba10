package limits_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/internal/testenv"
)

func start(t testing.TB, url, edge string, cfg limits.Config) *limits.Shared {
	t.Helper()
	s, err := limits.Start(testenv.Connect(t, url), edge, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestSharedTake: a user's bucket (burst, refill, Retry-After), another
// user unaffected, and a limit that is off.
func TestSharedTake(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	s := start(t, srv.ClientURL(), "e1", limits.Config{UserRate: 2, UserBurst: 3, RESTRate: -1})
	now := time.Now()
	for i := range 3 {
		if ok, _ := s.Take(limits.Msg, "alice", now); !ok {
			t.Fatalf("take %d within the burst refused", i)
		}
	}
	ok, wait := s.Take(limits.Msg, "alice", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("take past the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := s.Take(limits.Msg, "bob", now); !ok {
		t.Fatal("bob is limited by alice's bucket")
	}
	if ok, _ := s.Take(limits.Msg, "alice", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after refill")
	}
	for range 100 {
		if ok, _ := s.Take(limits.REST, "alice", now); !ok {
			t.Fatal("REST limit off, but refused")
		}
	}
}

// TestSharedAcrossEdges: what one edge takes is debited on the other within
// a few share intervals, and so are connection counts; a connection
// count comes back down when closed.
func TestSharedAcrossEdges(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	cfg := limits.Config{UserRate: 0.001, UserBurst: 10, UserConns: 2, Share: 20 * time.Millisecond}
	a := start(t, srv.ClientURL(), "a", cfg)
	b := start(t, srv.ClientURL(), "b", cfg)
	now := time.Now()
	for i := range 10 {
		if ok, _ := a.Take(limits.Msg, "alice", now); !ok {
			t.Fatalf("take %d on a refused", i)
		}
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if ok, _ := b.Take(limits.Msg, "alice", time.Now()); ok {
			return fmt.Errorf("b still has tokens for alice") // at most the 10 of its burst
		}
		return nil
	})
	if ok, n := a.Connect("carol", now); !ok || n != 1 {
		t.Fatalf("connect on a: %v %d", ok, n)
	}
	if ok, _ := b.Connect("carol", now); !ok {
		t.Fatal("second connection of carol refused")
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if ok, n := a.Connect("carol", time.Now()); ok {
			a.Disconnect("carol")
			return fmt.Errorf("a does not see b's connection (%d)", n)
		}
		return nil
	})
	b.Disconnect("carol")
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if ok, n := a.Connect("carol", time.Now()); !ok {
			return fmt.Errorf("a still counts b's closed connection (%d)", n)
		}
		return nil
	})
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	p, err := limits.ParseProxies([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.1", "198.51.100.1", "203.0.113.1"},                   // untrusted peer: xff ignored
		{"10.1.2.3", "", "10.1.2.3"},                                     // trusted peer without xff
		{"10.1.2.3", "198.51.100.1", "198.51.100.1"},                     // one proxy
		{"10.1.2.3", "1.1.1.1, 198.51.100.1, 192.0.2.7", "198.51.100.1"}, // forged leftmost skipped
		{"10.1.2.3", "10.9.9.9", "10.9.9.9"},                             // proxies all the way
		{"10.1.2.3", "garbage, 10.9.9.9", "10.9.9.9"},                    // unreadable: stop
		{"::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"},              // mapped peer
	} {
		got := p.ClientIP(netip.MustParseAddr(tc.peer), tc.xff)
		if got.String() != tc.want {
			t.Errorf("ClientIP(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
	if _, err := limits.ParseProxies([]string{"nope"}); err == nil {
		t.Error("ParseProxies accepted an invalid address")
	}
}

func TestIPs(t *testing.T) {
	t.Parallel()
	l := limits.NewIPs(limits.Config{IPConnRate: 1, IPConnBurst: 2, IPConns: 2})
	ip, other := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	now := time.Now()
	for i := range 2 {
		if ok, _ := l.Attempt(ip, now); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if ok, ra := l.Attempt(ip, now); ok || ra != 1 {
		t.Fatalf("3rd attempt: %v, Retry-After %d; want refused, 1", ok, ra)
	}
	if ok, _ := l.Attempt(other, now); !ok {
		t.Fatal("another IP refused")
	}
	if !l.Open(ip) || !l.Open(ip) || l.Open(ip) {
		t.Fatal("want 2 connections of one IP, not 3")
	}
	l.Close(ip)
	if !l.Open(ip) {
		t.Fatal("refused after a close")
	}
}

// BenchmarkTake is what a send pays for the per-user limit: a map lookup
// and a bucket update under a shard lock, 10,000 users, all cores; "off"
// is the same call with the limit off.
func BenchmarkTake(b *testing.B) {
	srv := testenv.StartNATS(b)
	users := make([]string, 10_000)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	for _, tc := range []struct {
		name string
		rate float64
	}{{"on", 1e9}, {"off", -1}, {"on-again", 1e9}} {
		s := start(b, srv.ClientURL(), "e-"+tc.name, limits.Config{UserRate: tc.rate, UserBurst: 1e9})
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					s.Take(limits.Msg, users[i%len(users)], time.Now())
					i++
				}
			})
		})
		s.Stop() // its share loop and subscription end before the next
	}
}

// TestSharedEdgeGone: an edge that stops cleanly reports its closed
// connections at once; the connections of an edge that stops reporting (a
// killed edge) are forgotten by the others after a few snapshots.
func TestSharedEdgeGone(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	cfg := limits.Config{UserConns: 1, Share: 10 * time.Millisecond}
	b := start(t, srv.ClientURL(), "b", cfg)
	a := start(t, srv.ClientURL(), "a", cfg)
	knc := testenv.Connect(t, srv.ClientURL())
	killed, err := limits.Start(knc, "k", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    *limits.Shared
		user string
	}{{a, "alice"}, {killed, "carol"}} {
		if ok, _ := c.s.Connect(c.user, time.Now()); !ok {
			t.Fatalf("connect %s refused", c.user)
		}
	}
	refusedOnB := func(user string) func() error {
		return func() error {
			if ok, _ := b.Connect(user, time.Now()); ok {
				b.Disconnect(user)
				return fmt.Errorf("b does not count %s's connection", user)
			}
			return nil
		}
	}
	acceptedOnB := func(user string) func() error {
		return func() error {
			if ok, _ := b.Connect(user, time.Now()); !ok {
				return fmt.Errorf("b still counts %s's connection", user)
			}
			b.Disconnect(user)
			return nil
		}
	}
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, refusedOnB("alice"))
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, refusedOnB("carol"))

	// a closes alice's connection and stops: its last report says so.
	a.Disconnect("alice")
	a.Stop()
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, acceptedOnB("alice"))

	// The killed edge's connection goes with it (no report: its NATS
	// connection is gone first); b forgets carol's count once it lapses.
	knc.Close()
	killed.Stop()
	gone := time.Now()
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, acceptedOnB("carol"))
	t.Logf("the killed edge's count lapsed after %v", time.Since(gone))
}

// FuzzClientIP: any X-Forwarded-For gives a valid address (no panic, no
// zero address); TestClientIP checks which one.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"", "198.51.100.1", "1.1.1.1, 10.0.0.1", "garbage", "[::1]:80, 10.2.2.2", ",,,", "10.0.0.1,"} {
		f.Add(s)
	}
	p, _ := limits.ParseProxies([]string{"10.0.0.0/8"})
	peer := netip.MustParseAddr("10.9.9.9")
	f.Fuzz(func(t *testing.T, xff string) {
		if got := p.ClientIP(peer, xff); !got.IsValid() {
			t.Fatalf("ClientIP(%q) is not an address", xff)
		}
	})
}
