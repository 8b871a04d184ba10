package bench

import (
	"io"
	"slices"
	"testing"
)

// TestParseStorm checks the storm flags: kill by default, graceful by flag
// or variable, anything else refused; the natter binary.
func TestParseStorm(t *testing.T) {
	c, err := parse([]string{"storm"}, io.Discard)
	if err != nil || c.withDefaults().StormMode != StormKill || c.NatterBin != "" {
		t.Errorf("default: mode %q bin %q err %v", c.StormMode, c.NatterBin, err)
	}
	c, err = parse([]string{"storm", "--storm-mode", "graceful", "--natter-bin", "/x/natter"}, io.Discard)
	if err != nil || c.StormMode != StormGraceful || c.NatterBin != "/x/natter" {
		t.Errorf("flags: mode %q bin %q err %v", c.StormMode, c.NatterBin, err)
	}
	t.Setenv("NATTER_BENCH_STORM_MODE", "graceful")
	if c, err = parse([]string{"storm"}, io.Discard); err != nil || c.StormMode != StormGraceful {
		t.Errorf("variable: mode %q err %v", c.StormMode, err)
	}
	if c, err = parse([]string{"storm", "--storm-presence", "5"}, io.Discard); err != nil || c.StormPresence != 5 {
		t.Errorf("--storm-presence 5: %d err %v", c.StormPresence, err)
	}
	if _, err := parse([]string{"storm", "--storm-presence", "-1"}, io.Discard); err == nil {
		t.Error("--storm-presence -1 was accepted")
	}
	if _, err := parse([]string{"storm", "--storm-mode", "crash"}, io.Discard); err == nil {
		t.Error("--storm-mode crash was accepted")
	}
}

func TestStormFigures(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want []int
	}{
		{nil, nil},
		{[]float64{0.2}, []int{1}},
		{[]float64{2.5, 0.1, 1, 1.5}, []int{2, 3, 4}},
		{[]float64{3}, []int{0, 0, 1}},
	} {
		if got := bySecond(slices.Clone(c.in)); !slices.Equal(got, c.want) {
			t.Errorf("bySecond(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	v := []float64{0.5, 0.1, 0.4, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 1.0}
	if p50, p90, mx := quantile(v, 0.5), quantile(v, 0.9), quantile(v, 1); p50 != 0.6 || p90 != 1.0 || mx != 1.0 {
		t.Errorf("p50 %v p90 %v max %v", p50, p90, mx)
	}
	if q := quantile(nil, 0.5); q != 0 {
		t.Errorf("quantile of nothing: %v", q)
	}
}
