package bench

import (
	"testing"
	"time"
)

// TestGrowthAfter: the memory scenario's growth is the last minute's mean
// over the mean of the minute from `from` on, so a flat sawtooth reads as
// no growth and a steady climb as its slope.
func TestGrowthAfter(t *testing.T) {
	t.Parallel()
	series := func(rss func(sec float64) float64) []MemorySample {
		var s []MemorySample
		for sec := 0.0; sec <= 600; sec += 10 {
			s = append(s, MemorySample{Sec: sec, RSSMB: rss(sec)})
		}
		return s
	}
	saw := series(func(sec float64) float64 {
		if int(sec/10)%2 == 0 {
			return 300
		}
		return 360
	})
	if at, g, peak := growthAfter(saw, 2*time.Minute); at != 120 || g < -10 || g > 10 || peak != 60 {
		t.Fatalf("sawtooth: from %v growth %v peak %v; want from 120, growth ~0, peak 60", at, g, peak)
	}
	climb := series(func(sec float64) float64 { return 100 + sec }) // 1 MB/s
	if at, g, _ := growthAfter(climb, 2*time.Minute); at != 120 || g < 400 || g > 440 {
		t.Fatalf("climb: from %v growth %v; want from 120, growth ~420", at, g)
	}
	if at, g, peak := growthAfter(climb[:5], 2*time.Minute); at != 0 || g != 0 || peak != 0 {
		t.Fatalf("too short: %v %v %v", at, g, peak)
	}
}
