package edge

import (
	"sync"
	"sync/atomic"
	"time"
)

// job is work for a pooled goroutine.
type job interface{ run() }

const (
	// poolMaxIdle is the most idle goroutines a pool keeps; one that
	// finishes a job when as many are idle exits.
	poolMaxIdle = 512
	// poolIdleTime is how long an idle goroutine is kept: the pool's
	// janitor, which runs while any goroutine is idle, ends those idle
	// longer every poolIdleTime/2 (so after poolIdleTime to 1.5 times it).
	poolIdleTime = 10 * time.Second
)

// goPool runs jobs on goroutines it keeps for the next job. The edge runs
// each request and each burst of writes of a session on a goroutine apart
// from the session's read loop (an idle socket's read loop keeps a small
// stack); a fresh goroutine for each grew its stack by copying, several
// times per request (the request path is deep: the decode, the checks, the
// append to the log, the socket write), which cost about as much as the
// request's own work on the edge (docs/benchmarks.md, "Cost per message:
// the edge"). A pooled goroutine keeps the stack it grew (until a garbage
// collection finds it idle and halves it), and a job wakes a parked one
// instead of starting one. A job never waits for another: when none is
// idle, Go starts a goroutine. The most recently parked goroutine runs the
// next job, so a few busy goroutines take most jobs and the others age
// out: an edge at rest keeps none, and no janitor either. The zero value
// is ready to use.
type goPool struct {
	mu      sync.Mutex
	idle    []*poolWorker // parked, the most recently parked last
	janitor bool          // a janitor runs (while idle is not empty)
	stopped bool
	live    atomic.Int64 // goroutines of the pool, running or parked
}

type poolWorker struct {
	jobs   chan job // a job, or nil to exit
	parked time.Time
}

// Go runs j on an idle goroutine of the pool, or on a new one.
func (p *goPool) Go(j job) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- j
		return
	}
	p.mu.Unlock()
	p.live.Add(1)
	go p.work(&poolWorker{jobs: make(chan job, 1)}, j)
}

// work runs j, then the jobs Go hands it while it is kept.
func (p *goPool) work(w *poolWorker, j job) {
	defer p.live.Add(-1)
	for j != nil {
		j.run()
		if !p.park(w) {
			return
		}
		j = <-w.jobs
	}
}

// park puts w on the idle list, unless the list is full or the pool is
// stopped (false: w exits), and starts the janitor if none runs.
func (p *goPool) park(w *poolWorker) bool {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= poolMaxIdle {
		return false
	}
	w.parked = now
	p.idle = append(p.idle, w)
	if !p.janitor {
		p.janitor = true
		go p.clean()
	}
	return true
}

// clean ends the goroutines idle longer than poolIdleTime every
// poolIdleTime/2, until none is idle.
func (p *goPool) clean() {
	t := time.NewTicker(poolIdleTime / 2)
	defer t.Stop()
	for range t.C {
		if !p.trim(time.Now().Add(-poolIdleTime)) {
			return
		}
	}
}

// trim ends the idle goroutines parked before cut. It reports whether
// any is left idle; when none is, the janitor is done (false).
func (p *goPool) trim(cut time.Time) bool {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].parked.Before(cut) {
		n++
	}
	stale := append([]*poolWorker(nil), p.idle[:n]...)
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	left := rest > 0 && !p.stopped
	if !left {
		p.janitor = false
	}
	p.mu.Unlock()
	for _, w := range stale {
		w.jobs <- nil
	}
	return left
}

// stop ends the idle goroutines; those running a job end after it, and
// the janitor at its next round.
func (p *goPool) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.jobs <- nil
	}
}

// idleCount is how many goroutines are parked.
func (p *goPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
