package limits

import (
	"math"
	"time"
)

// bucket is a token bucket that may go into debt (debits from other edges'
// reports), down to -burst. Not safe for concurrent use.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(rate float64, burst int, now time.Time) {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	if now.After(b.last) {
		b.last = now
	}
}

// take takes a token at now if one is there.
func (b *bucket) take(rate float64, burst int, now time.Time) bool {
	b.refill(rate, burst, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// debit takes n tokens used elsewhere, down to -burst.
func (b *bucket) debit(rate float64, burst int, n float64, now time.Time) {
	b.refill(rate, burst, now)
	b.tokens = max(-float64(burst), b.tokens-n)
}

// wait is how long until a token is there (at least a millisecond).
func (b *bucket) wait(rate float64) time.Duration {
	return max(time.Millisecond, time.Duration((1-b.tokens)/rate*float64(time.Second)))
}

// retryAfter is wait in whole seconds, at least 1 (a Retry-After header).
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
