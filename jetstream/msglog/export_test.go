package msglog

import (
	"testing"
	"time"
)

// LockEntries reports how many conversations have a lock entry.
func LockEntries(l *Log) int { return l.locks.size() }

// SetBatchBytes caps how many bytes one batched read returns, so that tests
// can exercise reads the server cuts short.
func SetBatchBytes(l *Log, n int) { l.batchBytes = n }

// FlushIdem waits until every async IDEM create of l is acked, so that a
// test sees the records an append wrote.
func FlushIdem(tb testing.TB, l *Log) {
	tb.Helper()
	select {
	case <-l.ajs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatalf("%d idem creates still pending after a minute", l.ajs.PublishAsyncPending())
	}
}

// ReadStats are the page read counters of a Log.
type ReadStats struct {
	Hops, Walks, Gets, BlockWalks uint64
}

// Stats returns the page read counters of l.
func Stats(l *Log) ReadStats {
	return ReadStats{Hops: l.stats.hops.Load(), Walks: l.stats.walks.Load(), Gets: l.stats.gets.Load(), BlockWalks: l.stats.blockWalks.Load()}
}

// WalkOnly makes l read every page over block starts and one batched read,
// as it reads entries without back windows: the reference the windowed
// reads are checked against.
func WalkOnly(l *Log) { l.walkOnly = true }

// Stalls reports how many append attempts of l were retried because they
// got no answer.
func Stalls(l *Log) uint64 { return l.stats.stalls.Load() }
