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
