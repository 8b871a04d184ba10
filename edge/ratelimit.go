package edge

import (
	"math"
	"sync"
	"time"
)

// bucket is a token bucket owned by one connection's read loop (not safe
// for concurrent use, and it needs no lock).
type bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take reports whether a token was available at now, taking it if so.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time) {
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
}

// retryAfter is how long after the last take a token is available again,
// in whole seconds (at least 1): the Retry-After of a refused request.
func (b *bucket) retryAfter() int {
	return max(1, int(math.Ceil((1-b.tokens)/b.rate)))
}

// userLimiter is a token bucket per key (the REST user), safe for
// concurrent use. Its memory is bounded by the keys seen within idle: a
// bucket not used for idle (at least the time it takes to refill) is full
// again, so it is dropped, by a sweep at most once per idle.
type userLimiter struct {
	rate  float64
	burst int
	idle  time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

func newUserLimiter(rate float64, burst int) *userLimiter {
	idle := time.Duration(float64(burst) / rate * float64(time.Second))
	return &userLimiter{rate: rate, burst: burst, idle: max(idle, time.Minute), buckets: map[string]*bucket{}}
}

// take takes a token of key's bucket at now. When none is left it returns
// false and the seconds until one is.
func (l *userLimiter) take(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		nb := newBucket(l.rate, l.burst)
		b = &nb
		l.buckets[key] = b
	}
	if b.take(now) {
		return true, 0
	}
	return false, b.retryAfter()
}

// sweep drops the buckets unused for idle. l.mu is held.
func (l *userLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, k)
		}
	}
}

// size is the number of buckets kept.
func (l *userLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
