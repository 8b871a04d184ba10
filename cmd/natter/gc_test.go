package main

import (
	"math"
	"regexp"
	"strconv"
	"testing"

	"github.com/natter-im/natter/internal/gctune"
)

// gcInForce reads the collector's setting of a running natter from its
// /metrics (Go's runtime metrics /gc/gogc:percent and /gc/gomemlimit:bytes).
func gcInForce(t *testing.T, p *proc) (percent int, limit int64) {
	t.Helper()
	_, m := get(t, p.url("/metrics"))
	num := func(name string) float64 {
		g := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(m)
		if g == nil {
			t.Fatalf("/metrics lacks %s", name)
		}
		v, err := strconv.ParseFloat(g[1], 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	percent = int(num("go_gc_gogc_percent"))
	l := num("go_gc_gomemlimit_bytes")
	if l >= math.MaxInt64 {
		return percent, math.MaxInt64
	}
	return percent, int64(l)
}

// TestGCSetting: natter dev runs its collector at natter's default (not
// Go's), --gc-percent and --memory-limit override it, and Go's own GOGC
// and GOMEMLIMIT win over both. Not parallel: it sets GOGC for a child.
func TestGCSetting(t *testing.T) {
	wantLimit := int64(gctune.DefaultMemoryLimit)
	if wantLimit == 0 {
		wantLimit = math.MaxInt64
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("NATTER_GC_PERCENT", "")
	t.Setenv("NATTER_MEMORY_LIMIT", "")

	dev := startDev(t, t.TempDir())
	if p, l := gcInForce(t, dev); p != gctune.DefaultPercent || l != wantLimit {
		t.Errorf("natter dev, defaults: GC percent %d, memory limit %d; want %d, %d", p, l, gctune.DefaultPercent, wantLimit)
	}
	dev.stop(t)

	dev = startDev(t, t.TempDir(), "--gc-percent", "150", "--memory-limit", "300MiB")
	if p, l := gcInForce(t, dev); p != 150 || l != 300<<20 {
		t.Errorf("natter dev --gc-percent 150 --memory-limit 300MiB: GC percent %d, memory limit %d; want 150, %d", p, l, 300<<20)
	}
	dev.stop(t)

	t.Setenv("GOGC", "77")
	t.Setenv("GOMEMLIMIT", "200MiB")
	dev = startDev(t, t.TempDir(), "--gc-percent", "150", "--memory-limit", "300MiB")
	if p, l := gcInForce(t, dev); p != 77 || l != 200<<20 {
		t.Errorf("natter dev with GOGC=77 GOMEMLIMIT=200MiB: GC percent %d, memory limit %d; want Go's 77, %d", p, l, 200<<20)
	}
}
