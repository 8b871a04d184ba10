package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/natter-im/natter/internal/node"
)

// MemoryFigures are the memory scenario's: the server's RSS while the relay
// runs at a steady rate, and at rest after a restart on the same data.
type MemoryFigures struct {
	// Series is one sample per interval from the start of the window.
	Series []MemorySample `json:"series"`
	// GrowthAfter2mMB is the mean RSS of the last minute minus the mean of
	// the minute from 2 minutes on (from a fifth of the window, for runs
	// under 5 minutes): the growth once the 2-minute dedup windows are full, with the
	// GC's sawtooth (a collection every few seconds, the heap swinging by
	// tens of MB) averaged out.
	GrowthAfter2mMB float64 `json:"growth_after_2m_mb"`
	// GrowthFromSec is where that first minute starts.
	GrowthFromSec float64 `json:"growth_from_s"`
	// PeakAfter2mMB is the largest RSS sample from GrowthFromSec on minus
	// the first one there: the strict reading, sawtooth included.
	PeakAfter2mMB float64 `json:"peak_after_2m_mb"`
	// Rest is the in-process node restarted on the same data with no
	// traffic, after a GC that returns freed memory to the OS (the same
	// process cannot show a fresh one's RSS otherwise); nil for --url.
	Rest []MemorySample `json:"rest,omitempty"`
}

// MemorySample is one reading. HeapMB and HeapObjects are this process's
// live Go heap (what the last GC found reachable) and only for an
// in-process target.
type MemorySample struct {
	Sec         float64 `json:"s"`
	RSSMB       float64 `json:"rss_mb"`
	HeapMB      float64 `json:"heap_mb,omitempty"`
	HeapObjects uint64  `json:"heap_objects,omitempty"`
}

// memoryEvery is the sampling interval of the memory scenario.
const memoryEvery = 10 * time.Second

// restAfterWindow is the last sample at rest: past the 2-minute dedup
// windows, whose message ids nats-server rebuilds at start and holds until
// they expire.
const restAfterWindow = 150 * time.Second

// memory runs the relay at a steady rate (default 1,500 msg/s, 200
// connections, 10 minutes) and samples the server's RSS every 10 s: this
// process for the in-process natter dev (the generator runs in child
// processes), else the first --edge-pid. Then, in-process, it restarts the
// node on the same data and samples it at rest.
func (r *runner) memory(ctx context.Context) ([]*Result, error) {
	conns, rate := r.cfg.conns("memory"), r.cfg.Rate
	if rate == 0 {
		rate = 1500
	}
	pairs := conns / 2
	if pairs < 1 {
		return nil, fmt.Errorf("memory: --conns %d: need at least 2", conns)
	}
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: r.cfg.Edges})
	if err != nil {
		return nil, err
	}
	defer func() { t.close() }()
	pid := 0
	if !t.local {
		if len(t.pids) == 0 {
			return nil, errors.New("memory: no server process to measure: give --edge-pid (or run on the machine of --url)")
		}
		pid = t.pids[0]
	}
	name := fmt.Sprintf("memory, relay at %s msg/s", commas(int64(rate)))
	fig := &MemoryFigures{}
	sample := func(t0 time.Time) (MemorySample, error) {
		rss, err := rssOf(pid)
		if err != nil {
			return MemorySample{}, err
		}
		s := MemorySample{Sec: round3(time.Since(t0).Seconds()), RSSMB: mb(rss)}
		if pid == 0 {
			s.HeapMB, s.HeapObjects = liveHeap()
		}
		return s, nil
	}
	during := func(ctx context.Context, _ *fleet) error {
		t0 := time.Now()
		tick := time.NewTicker(memoryEvery)
		defer tick.Stop()
		for {
			s, err := sample(t0)
			if err != nil {
				return err
			}
			fig.Series = append(fig.Series, s)
			if time.Since(t0) >= r.cfg.Duration {
				return nil
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	last := func() string {
		if len(fig.Series) == 0 {
			return ""
		}
		return fmt.Sprintf("rss %.0f MB", fig.Series[len(fig.Series)-1].RSSMB)
	}
	base := r.jobBase("relay", t, t.urls)
	d, err := r.drive(ctx, name, t, r.jobs(base, pairs, rate), hooks{during: during, status: last})
	if err != nil {
		return nil, err
	}
	res := r.result("memory", name, d, pairs*2, rate)
	res.Target = t.name()
	res.PersistPending = t.persistPending(ctx)
	res.Memory = fig
	fig.GrowthFromSec, fig.GrowthAfter2mMB, fig.PeakAfter2mMB = growthAfter(fig.Series, growthFrom(r.cfg.Duration))
	if t.local {
		if err := r.memoryRest(ctx, t, fig); err != nil {
			res.note("restart at rest: %v", err)
		}
	}
	res.note("RSS series (s: MB): %s", seriesLine(fig.Series))
	if pid == 0 {
		res.note("live Go heap series (s: MB): %s", heapLine(fig.Series))
	}
	if len(fig.Rest) > 0 {
		res.note("after a restart on the same data, no traffic (s: MB RSS after a GC returned freed memory; live Go heap MB, objects): %s", restLine(fig.Rest))
	}
	res.check("memory: RSS grows <= 50 MB after the first 2 minutes at a steady 1,500 msg/s for 10 minutes (last minute's mean over the mean of minute 3)",
		fmt.Sprintf("%.0f MB from %.0f s (largest sample %.0f MB above the first)", fig.GrowthAfter2mMB, fig.GrowthFromSec, fig.PeakAfter2mMB), fig.GrowthAfter2mMB <= 50,
		rate != 1500 || r.cfg.Duration < 10*time.Minute)
	return []*Result{res}, nil
}

// memoryRest waits for the archive to catch up, restarts the in-process
// node on the same data and samples it at rest.
func (r *runner) memoryRest(ctx context.Context, t *target, fig *MemoryFigures) error {
	deadline := time.Now().Add(2 * time.Minute)
	for t.persistPending(ctx) != 0 {
		if time.Now().After(deadline) {
			return errors.New("PERSIST still behind after 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if t.nc != nil {
		t.nc.Close() // the restarted node's NATS listens on another port
		t.nc, t.js = nil, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := t.dev.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	t.dev = nil
	n, err := node.Start(sctx, t.devCfg)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	t.dev = n
	t0 := time.Now()
	for _, at := range []time.Duration{10 * time.Second, 30 * time.Second, restAfterWindow} {
		if d := time.Until(t0.Add(at)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		debug.FreeOSMemory()
		rss, err := rssOf(0)
		if err != nil {
			return err
		}
		heap, objects := liveHeap()
		fig.Rest = append(fig.Rest, MemorySample{Sec: round3(time.Since(t0).Seconds()), RSSMB: mb(rss), HeapMB: heap, HeapObjects: objects})
	}
	return nil
}

// growthFrom is where the growth counts from: 2 minutes (the dedup
// windows are full by then), a fifth of the window for runs under 5
// minutes.
func growthFrom(d time.Duration) time.Duration {
	if d >= 5*time.Minute {
		return 2 * time.Minute
	}
	return d / 5
}

// growthAfter returns, for the samples from `from` on: where they start,
// the mean of the last minute minus the mean of the first minute, and the
// largest sample minus the first.
func growthAfter(s []MemorySample, from time.Duration) (at, growth, peak float64) {
	i := 0
	for i < len(s) && s[i].Sec < from.Seconds() {
		i++
	}
	if i == len(s) {
		return 0, 0, 0
	}
	s = s[i:]
	at = s[0].Sec
	for _, p := range s {
		peak = max(peak, p.RSSMB-s[0].RSSMB)
	}
	mean := func(lo, hi float64) float64 {
		var sum float64
		n := 0
		for _, p := range s {
			if p.Sec >= lo && p.Sec < hi {
				sum += p.RSSMB
				n++
			}
		}
		if n == 0 {
			return 0
		}
		return sum / float64(n)
	}
	end := s[len(s)-1].Sec
	return at, round3(mean(end-60, end+1) - mean(at, at+60)), round3(peak)
}

func seriesLine(s []MemorySample) string {
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = fmt.Sprintf("%.0f: %.0f", p.Sec, p.RSSMB)
	}
	return strings.Join(parts, ", ")
}

func heapLine(s []MemorySample) string {
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = fmt.Sprintf("%.0f: %.0f", p.Sec, p.HeapMB)
	}
	return strings.Join(parts, ", ")
}

func restLine(s []MemorySample) string {
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = fmt.Sprintf("%.0f: %.0f (heap %.0f, %s objects)", p.Sec, p.RSSMB, p.HeapMB, commas(int64(p.HeapObjects)))
	}
	return strings.Join(parts, "; ")
}

func mb(b int64) float64 { return round3(float64(b) / (1 << 20)) }

// liveHeap is this process's live Go heap in MB as the last GC found it,
// and the heap's objects.
func liveHeap() (float64, uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	var live, objects uint64
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		objects = s[1].Value.Uint64()
	}
	return mb(int64(live)), objects
}
