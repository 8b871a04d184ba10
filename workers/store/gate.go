package store

import (
	"context"
	"fmt"
)

// writeGate lets one write command at a time go to the embedded store
// (FerretDB v1 on SQLite), in the order they came, and is open (no gate) on
// any other server. Why: SQLite has one writer, and a FerretDB connection
// that finds the database locked sleeps and retries in SQLite's busy
// handler (1, 2, 5, 10 ... then 100 ms at a time, up to busy_timeout)
// while later writers that come between its sleeps go first: with a few
// concurrent writers (the create batches, the outbox pulls, the persist
// worker, lock takes and releases) some writes waited 300-400 ms for their
// turn behind writes of a few ms each, which was the p99 of a create.
// Waiting here instead costs the queue and nothing more. Reads are not
// gated (SQLite's WAL serves them beside the writer), nor are lock renewals
// (locks.go), which must not wait behind a slow write of the holder. One gate per Store:
// natter dev opens one; several processes on one embedded store (tests of
// replicas) still meet in SQLite's handler, as before.
type writeGate chan struct{}

// do runs fn, a single write command, in its turn. Waiting for the turn
// ends with ctx.
func (g writeGate) do(ctx context.Context, fn func() error) error {
	if g == nil {
		return fn()
	}
	select {
	case g <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("store: wait to write: %w", ctx.Err())
	}
	defer func() { <-g }()
	return fn()
}
