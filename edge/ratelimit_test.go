package edge

import (
	"fmt"
	"testing"
	"time"
)

func TestUserLimiter(t *testing.T) {
	t.Parallel()
	l := newUserLimiter(2, 3)
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if ok, _ := l.take("alice", now); !ok {
			t.Fatalf("take %d within the burst refused", i)
		}
	}
	ok, wait := l.take("alice", now)
	if ok || wait != 1 {
		t.Fatalf("take past the burst: %v, retry after %d; want refused, 1", ok, wait)
	}
	if ok, _ := l.take("bob", now); !ok {
		t.Fatal("another user is limited by alice's bucket")
	}
	// 2 per second: half a second gives one token back.
	if ok, _ := l.take("alice", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after refill")
	}
	// Slow rate: Retry-After covers the time to the next token.
	slow := newUserLimiter(0.1, 1)
	slow.take("u", now)
	if ok, wait := slow.take("u", now); ok || wait != 10 {
		t.Fatalf("rate 0.1: %v, retry after %d; want refused, 10", ok, wait)
	}
}

// TestUserLimiterForgetsIdleUsers: the buckets of users who stopped
// calling are dropped, so the map holds only recent users.
func TestUserLimiterForgetsIdleUsers(t *testing.T) {
	t.Parallel()
	l := newUserLimiter(20, 100)
	now := time.Unix(1_000_000, 0)
	for i := range 10_000 {
		l.take(fmt.Sprint("u", i), now)
	}
	if n := l.size(); n != 10_000 {
		t.Fatalf("size %d, want 10000", n)
	}
	// Past the idle time (a minute here) the next take sweeps them.
	l.take("late", now.Add(l.idle))
	if n := l.size(); n != 1 {
		t.Fatalf("size after idle users expired: %d, want 1", n)
	}
	// A full bucket was dropped: a returning user starts with the burst.
	for i := range 100 {
		if ok, _ := l.take("u1", now.Add(l.idle+time.Second)); !ok {
			t.Fatalf("returning user refused at %d", i)
		}
	}
}
