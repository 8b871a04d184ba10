package bench

import (
	"encoding/json"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a log-linear latency histogram in microseconds: 32 sub-buckets per
// power of two (about 3% resolution), lock-free, mergeable across processes
// through its JSON form.
type hist struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	maxUs  atomic.Int64
}

// histJSON is the wire form of a hist (sparse).
type histJSON struct {
	Counts map[int]uint64 `json:"counts"`
	N      uint64         `json:"n"`
	MaxUs  int64          `json:"max_us"`
}

const nBuckets = 40 << subBits // up to 2^44 us

func (h *hist) MarshalJSON() ([]byte, error) {
	j := histJSON{Counts: map[int]uint64{}, N: h.n.Load(), MaxUs: h.maxUs.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			j.Counts[i] = c
		}
	}
	return json.Marshal(j)
}

func (h *hist) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	for i, c := range j.Counts {
		if i >= 0 && i < nBuckets {
			h.counts[i].Store(c)
		}
	}
	h.n.Store(j.N)
	h.maxUs.Store(j.MaxUs)
	return nil
}

const subBits = 5 // 32 sub-buckets per power of two

func newHist() *hist { return &hist{} }

func bucketOf(us int64) int {
	if us < 1 {
		us = 1
	}
	e := 63 - bits.LeadingZeros64(uint64(us)) // floor(log2)
	if e < subBits {
		return int(us)
	}
	sub := (us >> (e - subBits)) & (1<<subBits - 1)
	return (e-subBits+1)<<subBits | int(sub)
}

// bucketLow is the smallest value of bucket b (in us); the reported value of
// a bucket is its midpoint.
func bucketMid(b int) float64 {
	if b < 1<<subBits {
		return float64(b)
	}
	e := b>>subBits + subBits - 1
	sub := int64(b & (1<<subBits - 1))
	low := (int64(1)<<subBits | sub) << (e - subBits)
	width := int64(1) << (e - subBits)
	return float64(low) + float64(width)/2
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	b := min(bucketOf(us), nBuckets-1)
	h.counts[b].Add(1)
	h.n.Add(1)
	for {
		m := h.maxUs.Load()
		if us <= m || h.maxUs.CompareAndSwap(m, us) {
			return
		}
	}
}

func (h *hist) merge(o *hist) {
	if o == nil {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	for {
		m, om := h.maxUs.Load(), o.maxUs.Load()
		if om <= m || h.maxUs.CompareAndSwap(m, om) {
			return
		}
	}
}

// quantile returns the q-quantile (0..1) in milliseconds, NaN when empty.
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	maxUs := float64(h.maxUs.Load())
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return math.Min(bucketMid(i), maxUs) / 1000
		}
	}
	return maxUs / 1000
}

// latency summarises h; nil when h is empty.
func (h *hist) latency() *Latency {
	if h == nil || h.n.Load() == 0 {
		return nil
	}
	return &Latency{Count: h.n.Load(), P50: round3(h.quantile(0.50)), P99: round3(h.quantile(0.99)),
		P999: round3(h.quantile(0.999)), Max: round3(float64(h.maxUs.Load()) / 1000)}
}

func round3(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*1000) / 1000
}
