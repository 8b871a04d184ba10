package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// writeGate lets one write command at a time go to the embedded store
// (FerretDB v1 on SQLite), and is open (no gate: nil) on any other server.
// Why: SQLite has one writer, and a FerretDB connection that finds the
// database locked sleeps and retries in SQLite's busy handler (1, 2, 5,
// 10 ... then 100 ms at a time, up to busy_timeout) while later writers
// that come between its sleeps go first: with a few concurrent writers
// (the create batches, the outbox pulls, the persist worker, lock takes
// and releases) some writes waited 300-400 ms for their turn behind writes
// of a few ms each, which was the p99 of a create. Waiting here instead
// costs the queue and nothing more. Reads are not gated (SQLite's WAL
// serves them beside the writer), nor are lock renewals (locks.go), which
// must not wait behind a slow write of the holder. One gate per Store:
// natter dev opens one; several processes on one embedded store (tests of
// replicas) still meet in SQLite's handler, as before.
//
// Two lanes, each in its order: the small writes of requests (do: creates,
// member changes, locks, cursors) go before the bulk writes (bulk: the
// removals of published events, which nobody waits for, and the inserts of
// messages and archive blocks, mostly the persist worker's), so a create
// does not queue behind cleanup or a batch of a thousand messages; after
// gateBurst turns of the first lane in a row, a waiting bulk write takes
// one, so neither lane starves.
//
// A turn is bounded: a write still running after gateHold (a FerretDB
// command stuck, a write under a lock that has no deadline) gives its turn
// up, and the next goes to SQLite beside it (its busy handler orders the
// two, as without the gate), rather than every write of the process
// waiting behind it.
type writeGate struct {
	hold time.Duration

	mu    sync.Mutex
	busy  bool
	burst int // turns of the first lane in a row while bulk writes waited
	first []chan struct{}
	bulkQ []chan struct{}
}

// gateHold bounds a write's turn at the gate.
const gateHold = 2 * time.Second

// gateBurst is how many turns the first lane takes in a row while bulk
// writes wait.
const gateBurst = 4

func newWriteGate() *writeGate { return &writeGate{hold: gateHold} }

// do runs fn, a single write command a request waits for, in its turn.
// Waiting for the turn ends with ctx.
func (g *writeGate) do(ctx context.Context, fn func() error) error {
	return g.run(ctx, false, fn)
}

// bulk runs fn, a single bulk write command, in its turn (after the
// writes of do waiting then, up to gateBurst of them). Waiting ends with
// ctx.
func (g *writeGate) bulk(ctx context.Context, fn func() error) error {
	return g.run(ctx, true, fn)
}

func (g *writeGate) run(ctx context.Context, bulk bool, fn func() error) error {
	if g == nil {
		return fn()
	}
	if err := g.acquire(ctx, bulk); err != nil {
		return err
	}
	var once sync.Once
	release := func() { once.Do(g.release) }
	t := time.AfterFunc(g.hold, release)
	defer func() {
		t.Stop()
		release()
	}()
	return fn()
}

// acquire waits for a turn in the lane.
func (g *writeGate) acquire(ctx context.Context, bulk bool) error {
	g.mu.Lock()
	if !g.busy && len(g.first) == 0 && len(g.bulkQ) == 0 {
		g.busy = true
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	if bulk {
		g.bulkQ = append(g.bulkQ, turn)
	} else {
		g.first = append(g.first, turn)
	}
	g.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	q := &g.first
	if bulk {
		q = &g.bulkQ
	}
	for i, c := range *q {
		if c == turn {
			*q = append((*q)[:i], (*q)[i+1:]...)
			g.mu.Unlock()
			return fmt.Errorf("store: wait to write: %w", ctx.Err())
		}
	}
	g.mu.Unlock()
	// The turn came as ctx ended: pass it on.
	<-turn
	g.release()
	return fmt.Errorf("store: wait to write: %w", ctx.Err())
}

// release ends a turn: the next waiting write takes it.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next chan struct{}
	switch {
	case len(g.bulkQ) > 0 && (len(g.first) == 0 || g.burst >= gateBurst):
		next, g.bulkQ, g.burst = g.bulkQ[0], g.bulkQ[1:], 0
	case len(g.first) > 0:
		next, g.first = g.first[0], g.first[1:]
		if len(g.bulkQ) > 0 {
			g.burst++
		}
	default:
		g.busy, g.burst = false, 0
		return
	}
	close(next)
}
