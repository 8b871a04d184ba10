package edge

import (
	"sync"
	"testing"
	"time"
)

// funcJob is a func as a pool job.
type funcJob func()

func (f funcJob) run() { f() }

// waitIdle waits until p has n parked goroutines.
func waitIdle(t *testing.T, p *goPool, n int) {
	t.Helper()
	waitFor(t, "idle goroutines", func() bool { return p.idleCount() == n })
}

// TestPoolReuses: jobs run one after another take the one parked
// goroutine: the pool starts no other.
func TestPoolReuses(t *testing.T) {
	t.Parallel()
	var p goPool
	ran := 0
	for range 100 {
		done := make(chan struct{})
		p.Go(funcJob(func() { ran++; close(done) }))
		<-done
		waitIdle(t, &p, 1)
	}
	if ran != 100 || p.live.Load() != 1 {
		t.Fatalf("ran %d jobs on %d goroutines, want 100 on 1", ran, p.live.Load())
	}
}

// TestPoolNeverWaits: a job never waits for another: jobs that block until
// released all run at once, each on a goroutine of its own (a slow request
// of one socket holds no other socket's).
func TestPoolNeverWaits(t *testing.T) {
	t.Parallel()
	var p goPool
	const n = 50
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	for range n {
		p.Go(funcJob(func() { started.Done(); <-release; finished.Done() }))
	}
	started.Wait() // every job runs while none has finished
	close(release)
	finished.Wait()
	waitIdle(t, &p, n)
	if got := p.live.Load(); got != n {
		t.Fatalf("%d goroutines, want %d", got, n)
	}
}

// TestPoolBounds: at most poolMaxIdle goroutines stay parked; a janitor
// runs while any is; those idle longer than poolIdleTime exit at its next
// round; stop ends the idle ones, and the janitor.
func TestPoolBounds(t *testing.T) {
	t.Parallel()
	var p goPool
	n := poolMaxIdle + 20
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		p.Go(funcJob(func() { started.Done(); <-release }))
	}
	started.Wait()
	close(release)
	waitFor(t, "the goroutines past poolMaxIdle to exit", func() bool { return p.live.Load() == poolMaxIdle })
	waitIdle(t, &p, poolMaxIdle)

	// All but the newest parked before the idle time: the janitor's next
	// round ends them.
	p.mu.Lock()
	janitor := p.janitor
	for _, w := range p.idle[:len(p.idle)-1] {
		w.parked = w.parked.Add(-2 * poolIdleTime)
	}
	p.mu.Unlock()
	if !janitor {
		t.Fatal("no janitor while goroutines are idle")
	}
	if !p.trim(time.Now().Add(-poolIdleTime)) {
		t.Fatal("trim left no idle goroutine, want the newest")
	}
	waitFor(t, "the stale goroutines to exit", func() bool { return p.live.Load() == 1 })
	waitIdle(t, &p, 1)

	p.stop()
	waitFor(t, "stop to end the idle goroutine", func() bool { return p.live.Load() == 0 })
	if p.trim(time.Now()) {
		t.Fatal("a stopped pool's janitor goes on")
	}
	// A job after stop still runs (on a goroutine that then exits).
	done := make(chan struct{})
	p.Go(funcJob(func() { close(done) }))
	<-done
	waitFor(t, "the goroutine after stop to exit", func() bool { return p.live.Load() == 0 })
}
