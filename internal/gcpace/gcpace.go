package gcpace

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Defaults of [Config].
const (
	DefaultMinInterval = time.Second
	DefaultMaxHeadroom = 128 << 20
	DefaultTick        = 250 * time.Millisecond
	basePercent        = 100  // Go's default GOGC
	maxPercent         = 2000 // bound on the percent whatever the live heap
	minLive            = 4 << 20
	idleTicks          = 8 // ticks at the base after load before the pages go back
)

// Config tunes the pacer. The zero value means the defaults.
type Config struct {
	// MinInterval is the time between collections the pacer aims for under
	// load. Default 1s ([DefaultMinInterval]); negative means off.
	MinInterval time.Duration
	// MaxHeadroom bounds the extra heap the pacer allows beyond Go's
	// default goal (the live heap again), in bytes. Default 128 MiB
	// ([DefaultMaxHeadroom]).
	MaxHeadroom uint64
	// Tick is how often the allocation rate is sampled. Default 250ms.
	Tick time.Duration
}

func (c Config) withDefaults() Config {
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.MaxHeadroom == 0 {
		c.MaxHeadroom = DefaultMaxHeadroom
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	return c
}

// Start starts the pacer and returns what stops it (which restores the
// base percent). It does nothing when cfg.MinInterval is negative or when
// the environment sets GOGC or GOMEMLIMIT.
func Start(cfg Config) (stop func()) {
	cfg = cfg.withDefaults()
	if cfg.MinInterval < 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	p := &pacer{cfg: cfg, percent: basePercent}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { p.run(done) })
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			debug.SetGCPercent(basePercent)
		})
	}
}

type pacer struct {
	cfg     Config
	percent int
	rate    float64 // smoothed allocation rate, bytes/s
	raised  bool    // the percent was above the base since the last release
	idle    int     // ticks at the base since then
}

func (p *pacer) run(done <-chan struct{}) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	prev, at := s[0].Value.Uint64(), time.Now()
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			metrics.Read(s)
			allocs, live := s[0].Value.Uint64(), s[1].Value.Uint64()
			if dt := now.Sub(at).Seconds(); dt > 0 {
				p.observe(float64(allocs-prev)/dt, live)
			}
			prev, at = allocs, now
		}
	}
}

// observe takes one sample of the allocation rate (bytes/s) and the live
// heap and sets the GC percent it leads to.
func (p *pacer) observe(rate float64, live uint64) {
	// Up at once (a burst of load), down by halves (a lull between
	// bursts keeps some of the headroom).
	if rate >= p.rate {
		p.rate = rate
	} else {
		p.rate = (p.rate + rate) / 2
	}
	want := percentFor(p.rate, live, p.cfg)
	if want > basePercent {
		p.raised, p.idle = true, 0
	} else if p.raised {
		if p.idle++; p.idle >= idleTicks {
			// Idle for idleTicks after load: collect and hand the
			// headroom's pages back to the OS now (the background
			// scavenger would take its time), so that an idle
			// process's RSS is what it was without the pacer. Not
			// sooner: FreeOSMemory holds the heap while it returns
			// the pages, which a lull inside a load would feel.
			p.raised, p.idle = false, 0
			debug.FreeOSMemory()
		}
	}
	// Small moves are not worth a new goal; a return to the base always is.
	if want == p.percent || (want != basePercent && abs(want-p.percent)*10 < p.percent) {
		return
	}
	p.percent = want
	debug.SetGCPercent(want)
}

// percentFor is the GC percent whose headroom over live holds minInterval
// of allocation at rate, within the bounds of cfg.
func percentFor(rate float64, live uint64, cfg Config) int {
	live = max(live, minLive)
	headroom := min(rate*cfg.MinInterval.Seconds(), float64(live+cfg.MaxHeadroom))
	pct := int(headroom * 100 / float64(live))
	return min(max(pct, basePercent), maxPercent)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
