package gcpace

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func cycles() uint64  { return read("/gc/cycles/total:gc-cycles") }
func percent() uint64 { return read("/gc/gogc:percent") }

// churn allocates about rate bytes per second in 64 KiB pieces for d,
// keeping about live bytes of them reachable (a ring).
func churn(rate, live int, d time.Duration) {
	const piece = 64 << 10
	ring := make([][]byte, live/piece)
	perTick := rate / piece / 100 // pieces per 10 ms
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); {
		next := time.Now().Add(10 * time.Millisecond)
		for range perTick {
			ring[i%len(ring)] = make([]byte, piece)
			i++
		}
		time.Sleep(time.Until(next))
	}
	runtime.KeepAlive(ring)
}

// TestPacedUnderLoad: a process that allocates ~100 MB/s with a live heap
// of ~8 MB collects every ~16 MB with Go's default (~6 times a second);
// paced for at least 500 ms between collections it collects at most ~2
// times a second, and once the allocation stops the percent is back at
// Go's default and the free pages are back with the OS.
func TestPacedUnderLoad(t *testing.T) {
	runtime.GC()
	stop := Start(Config{MinInterval: 500 * time.Millisecond, MaxHeadroom: 256 << 20, Tick: 20 * time.Millisecond})
	defer stop()
	churn(100<<20, 8<<20, 500*time.Millisecond) // the pacer sees the rate
	c0 := cycles()
	churn(100<<20, 8<<20, 2*time.Second)
	n := cycles() - c0
	// 2 s at >= 500 ms apart is 4; slack for a slow machine, far below the
	// ~12 of the default.
	if n > 6 {
		t.Errorf("%d collections in 2 s at ~100 MB/s, want <= 6 (paced to one per 500 ms)", n)
	}
	if p := percent(); p <= basePercent {
		t.Errorf("GC percent under load %d, want above %d", p, basePercent)
	}
	deadline := time.Now().Add(5 * time.Second)
	for percent() != basePercent {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d 5 s after the allocation stopped, want %d", percent(), basePercent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... and the headroom's pages go back to the OS soon after, not at
	// the background scavenger's pace.
	for free := read("/memory/classes/heap/free:bytes"); free > 8<<20; free = read("/memory/classes/heap/free:bytes") {
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB of free heap pages kept 5 s after the allocation stopped, want <= 8 MiB", free>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOffWhenGOGCSet: an operator's GOGC wins.
func TestOffWhenGOGCSet(t *testing.T) {
	t.Setenv("GOGC", "100")
	stop := Start(Config{MinInterval: 500 * time.Millisecond, Tick: 20 * time.Millisecond})
	defer stop()
	churn(100<<20, 8<<20, 500*time.Millisecond)
	if p := percent(); p != basePercent {
		t.Errorf("GC percent %d with GOGC set, want %d (pacer off)", p, basePercent)
	}
}

func TestPercentFor(t *testing.T) {
	cfg := Config{}.withDefaults()
	for _, c := range []struct {
		rate float64
		live uint64
		want int
	}{
		{0, 40 << 20, 100},                    // idle: Go's default
		{20 << 20, 40 << 20, 100},             // 20 MB/s: the default headroom holds 1 s
		{90 << 20, 36 << 20, 250},             // the relay at 2,000 msg/s: 90 MB of headroom
		{1 << 30, 36 << 20, 100 + 128*100/36}, // capped at live + 128 MiB
		{1 << 30, 1 << 20, 2000},              // a tiny heap: capped percent
	} {
		if got := percentFor(c.rate, c.live, cfg); got != c.want {
			t.Errorf("percentFor(%.0f MB/s, %d MB live) = %d, want %d", c.rate/(1<<20), c.live>>20, got, c.want)
		}
	}
}
