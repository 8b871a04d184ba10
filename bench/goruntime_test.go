package bench

import (
	"math"
	"testing"
)

func TestHistWindowQuantile(t *testing.T) {
	w := histWindow{
		counts:  []uint64{0, 90, 9, 1},
		buckets: []float64{0, 1, 2, 4, math.Inf(1)},
		total:   100,
	}
	for _, tc := range []struct {
		q, want float64
	}{{0.5, 2}, {0.9, 2}, {0.91, 4}, {0.99, 4}, {1, 4}} {
		if got := w.quantile(tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (histWindow{}).quantile(0.99); got != 0 {
		t.Errorf("empty window: %v, want 0", got)
	}
}
