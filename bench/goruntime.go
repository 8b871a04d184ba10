package bench

import (
	"math"
	"runtime/metrics"
)

// GoRuntime is what the Go runtime of an in-process server reports over a
// run's window. Sched is how long goroutines waited, runnable, for a
// processor (the scheduler latency: the queueing behind other work on the
// shared cores, which is where a latency tail comes from when the
// server's own code is fast); GC is the garbage collector's cycles and
// stop-the-world pauses. The runtime keeps these in histograms with
// buckets about 12% wide: each quantile is its bucket's upper bound.
type GoRuntime struct {
	SchedCount   uint64  `json:"sched_count"`
	SchedP50Ms   float64 `json:"sched_p50_ms"`
	SchedP99Ms   float64 `json:"sched_p99_ms"`
	SchedP999Ms  float64 `json:"sched_p999_ms"`
	GCCycles     uint64  `json:"gc_cycles"`
	GCPauseP99Ms float64 `json:"gc_pause_p99_ms"`
	GCPauseMaxMs float64 `json:"gc_pause_max_ms"`
}

// runtimeSample is a reading of the runtime metrics GoRuntime is made of.
type runtimeSample [3]metrics.Sample

func readRuntime() *runtimeSample {
	s := runtimeSample{
		{Name: "/sched/latencies:seconds"},
		{Name: "/gc/pauses:seconds"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s[:])
	return &s
}

// goRuntimeSince returns the figures of the window from a to now.
func goRuntimeSince(a *runtimeSample) *GoRuntime {
	b := readRuntime()
	sched := histDelta(a[0].Value, b[0].Value)
	pauses := histDelta(a[1].Value, b[1].Value)
	g := &GoRuntime{SchedCount: sched.total}
	g.SchedP50Ms = sched.quantile(0.5) * 1e3
	g.SchedP99Ms = sched.quantile(0.99) * 1e3
	g.SchedP999Ms = sched.quantile(0.999) * 1e3
	if b[2].Value.Kind() == metrics.KindUint64 && a[2].Value.Kind() == metrics.KindUint64 {
		g.GCCycles = b[2].Value.Uint64() - a[2].Value.Uint64()
	}
	g.GCPauseP99Ms = pauses.quantile(0.99) * 1e3
	g.GCPauseMaxMs = pauses.quantile(1) * 1e3
	return g
}

// histWindow is the difference of two readings of one runtime histogram.
type histWindow struct {
	counts  []uint64
	buckets []float64 // len(counts)+1 bounds
	total   uint64
}

func histDelta(a, b metrics.Value) histWindow {
	if a.Kind() != metrics.KindFloat64Histogram || b.Kind() != metrics.KindFloat64Histogram {
		return histWindow{}
	}
	ha, hb := a.Float64Histogram(), b.Float64Histogram()
	w := histWindow{counts: make([]uint64, len(hb.Counts)), buckets: hb.Buckets}
	for i := range hb.Counts {
		w.counts[i] = hb.Counts[i]
		if i < len(ha.Counts) {
			w.counts[i] -= ha.Counts[i]
		}
		w.total += w.counts[i]
	}
	return w
}

// quantile returns the upper bound of the bucket holding quantile q (0
// when the window is empty; the lower bound for the last, open bucket).
func (w histWindow) quantile(q float64) float64 {
	if w.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(w.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range w.counts {
		seen += c
		if seen >= rank {
			if hi := w.buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return w.buckets[i]
		}
	}
	return 0
}
