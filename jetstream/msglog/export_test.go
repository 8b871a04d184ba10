package msglog

// LockEntries reports how many conversations have a lock entry.
func LockEntries(l *Log) int { return l.locks.size() }

// SetBatchBytes caps how many bytes one batched read returns, so that tests
// can exercise reads the server cuts short.
func SetBatchBytes(l *Log, n int) { l.batchBytes = n }
