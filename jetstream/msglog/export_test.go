package msglog

// LockEntries reports how many conversations have a lock entry.
func LockEntries(l *Log) int { return l.locks.size() }

// SetBatchBytes caps how many bytes one batched read returns, so that tests
// can exercise reads the server cuts short.
func SetBatchBytes(l *Log, n int) { l.batchBytes = n }

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

// Scanned reports how many entries the retry check of l has read.
func Scanned(l *Log) uint64 { return l.stats.scanned.Load() }
