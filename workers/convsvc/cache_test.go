package convsvc_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
)

func newCache(t *testing.T, e *env, ttl time.Duration, max int) *convapi.MemberCache {
	t.Helper()
	nc := e.connect(t)
	m, err := convapi.NewMemberCache(ctxT(t), nc, convapi.NewClient(nc, 0), ttl, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMemberCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})

	t.Run("hit after first load", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob", "carol")
		g := group(t, e, u[0], u[1])
		m := newCache(t, e, 0, 0)
		for range 3 {
			if ok, err := m.IsMember(ctxT(t), g, u[1]); err != nil || !ok {
				t.Fatalf("IsMember bob: %v %v", ok, err)
			}
		}
		if ok, err := m.IsMember(ctxT(t), g, u[2]); err != nil || ok {
			t.Fatalf("IsMember carol: %v %v", ok, err)
		}
		if s := m.Stats(); s.Loads != 1 || s.Hits != 3 || s.Entries != 1 {
			t.Fatalf("stats %+v, want 1 load and 3 hits", s)
		}
	})

	t.Run("change from another client invalidates", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob", "carol")
		g := group(t, e, u[0], u[1])
		m := newCache(t, e, time.Hour, 0) // no TTL help
		if ok, _ := m.IsMember(ctxT(t), g, u[2]); ok {
			t.Fatal("carol is a member before being added")
		}
		other := convapi.NewClient(e.connect(t), 0)
		if err := other.AddMembers(ctxT(t), u[0], g, []string{u[2]}); err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if ok, err := m.IsMember(ctxT(t), g, u[2]); err != nil || !ok {
				return fmt.Errorf("carol not a member yet: %v", err)
			}
			return nil
		})
		if err := other.RemoveMembers(ctxT(t), u[1], g, []string{u[1]}); err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if ok, err := m.IsMember(ctxT(t), g, u[1]); err != nil || ok {
				return fmt.Errorf("bob still a member: %v", err)
			}
			return nil
		})
		if s := m.Stats(); s.Invalidations < 2 {
			t.Fatalf("stats %+v, want 2 invalidations", s)
		}
	})

	t.Run("concurrent misses make one load", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob")
		g := group(t, e, u[0], u[1])
		m := newCache(t, e, 0, 0)
		const n = 64
		atOnce(t, n, func() error {
			ms, err := m.Members(context.Background(), g)
			if err == nil && len(ms) != 2 {
				err = fmt.Errorf("members %v", ms)
			}
			return err
		})
		if s := m.Stats(); s.Loads != 1 || s.Hits+s.Shared != n-1 {
			t.Fatalf("stats %+v, want 1 load for %d callers", s, n)
		}
	})

	t.Run("unknown conversation", func(t *testing.T) {
		t.Parallel()
		u := names("alice", "bob")
		d := natter.DirectID(u[0], u[1])
		m := newCache(t, e, time.Hour, 0)
		if ok, err := m.IsMember(ctxT(t), d, u[0]); err != nil || ok {
			t.Fatalf("IsMember of unknown: %v %v, want false, nil", ok, err)
		}
		if _, err := m.Members(ctxT(t), d); !errors.Is(err, convapi.ErrNotFound) {
			t.Fatalf("Members of unknown: %v", err)
		}
		if s := m.Stats(); s.Loads != 1 {
			t.Fatalf("stats %+v: the unknown conversation is not cached", s)
		}
		direct(t, e, u[1], u[0]) // the create notice drops the negative entry
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if ok, err := m.IsMember(ctxT(t), d, u[0]); err != nil || !ok {
				return fmt.Errorf("alice not a member yet: %v", err)
			}
			return nil
		})
	})

	t.Run("ttl", func(t *testing.T) {
		t.Parallel()
		u := names("alice")
		g := group(t, e, u[0])
		m := newCache(t, e, 50*time.Millisecond, 0)
		testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if _, err := m.Members(ctxT(t), g); err != nil {
				return err
			}
			if s := m.Stats(); s.Loads < 2 {
				return fmt.Errorf("stats %+v: not reloaded", s)
			}
			return nil
		})
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		u := names("alice")
		var gs []string
		for range 3 {
			gs = append(gs, group(t, e, u[0]))
		}
		// The cache starts after the groups exist, so the change notices of
		// their creation cannot invalidate what it loads below.
		m := newCache(t, e, 0, 2)
		for _, g := range []string{gs[0], gs[1], gs[0], gs[2]} { // gs[1] is the least recently used
			if _, err := m.Members(ctxT(t), g); err != nil {
				t.Fatal(err)
			}
		}
		if s := m.Stats(); s.Entries != 2 || s.Evictions != 1 || s.Loads != 3 {
			t.Fatalf("stats %+v", s)
		}
		if _, err := m.Members(ctxT(t), gs[0]); err != nil {
			t.Fatal(err)
		}
		if s := m.Stats(); s.Loads != 3 {
			t.Fatalf("stats %+v: the recently used entry was evicted", s)
		}
	})
}

// TestMemberCacheReconnect: notices sent while the connection is down are
// lost, so a reconnect drops every entry.
func TestMemberCacheReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	u := names("alice")
	g := group(t, e, u[0])
	m := newCache(t, e, time.Hour, 0)
	if _, err := m.Members(ctxT(t), g); err != nil {
		t.Fatal(err)
	}
	e.restartNATS(t)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := m.Stats(); s.Entries != 0 || s.Invalidations == 0 {
			return fmt.Errorf("stats %+v: not flushed", s)
		}
		return nil
	})
	// The service reconnected too and answers again.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		_, err := m.Members(ctxT(t), g)
		return err
	})
}

// atOnce runs fn in n goroutines released together and fails t with the
// first error any of them returns.
func atOnce(t *testing.T, n int, fn func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			errs <- fn()
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
