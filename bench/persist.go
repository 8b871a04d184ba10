package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

type persistSample struct {
	at      time.Time
	backlog uint64
	floor   uint64
}

// sampler reads the PERSIST consumer every second until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []persistSample
	stop    chan struct{}
	done    chan struct{}
}

func (t *target) sample(ctx context.Context) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	take := func() {
		b, f, err := t.persistInfo(ctx)
		if err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, persistSample{time.Now(), b, f})
			s.mu.Unlock()
		}
	}
	take()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				take()
			case <-s.stop:
				take()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

func (s *sampler) end() []persistSample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// waitBacklog waits until the PERSIST backlog is 0; it returns how long
// that took, or -1 after timeout.
func (t *target) waitBacklog(ctx context.Context, timeout time.Duration) float64 {
	start := time.Now()
	ok := drainUntil(ctx, timeout, func() bool {
		b, _, err := t.persistInfo(ctx)
		return err == nil && b == 0
	})
	if !ok {
		return -1
	}
	return round3(time.Since(start).Seconds())
}

// slope is the least-squares growth of the backlog per second over samples.
func slope(ss []persistSample) float64 {
	if len(ss) < 2 {
		return 0
	}
	t0 := ss[0].at
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.at.Sub(t0).Seconds(), float64(s.backlog)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// persist runs the persist scenario: senders (relay pairs) at --rate or
// flat out while the PERSIST consumer is sampled every second, then the
// raw InsertMany baseline on the same store.
func (r *runner) persist(ctx context.Context) ([]*Result, error) {
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: r.cfg.Edges})
	if err != nil {
		return nil, err
	}
	defer t.close()
	if t.js == nil {
		return nil, fmt.Errorf("persist: the PERSIST consumer cannot be read: give --nats-url")
	}
	conns := r.cfg.conns("persist")
	var out []*Result
	rate := r.cfg.Rate
	if r.cfg.RateFrac > 0 {
		cal, err := r.persistOnce(ctx, t, conns, 0, r.cfg.Calibrate, "persist calibration (flat out)")
		if err != nil {
			return nil, err
		}
		out = append(out, cal)
		rate = float64(int(cal.Persist.Rate * r.cfg.RateFrac))
		if rate <= 0 {
			return out, fmt.Errorf("persist: calibration measured %.0f persisted msg/s", cal.Persist.Rate)
		}
	}
	res, err := r.persistOnce(ctx, t, conns, rate, r.cfg.Duration, "")
	if err != nil {
		return out, err
	}
	if r.cfg.RateFrac > 0 {
		res.note("rate = %.0f%% of the calibration's persisted msg/s", r.cfg.RateFrac*100)
		flat := res.Persist.BacklogSlope <= max(0.01*rate, 5)
		res.check(fmt.Sprintf("persist at %.0f%% of the measured rate for %v: backlog flat", r.cfg.RateFrac*100, r.cfg.Duration),
			fmt.Sprintf("backlog slope %s msg/s, max %s", fnum(res.Persist.BacklogSlope), commas(int64(maxBacklog(res.Persist.Backlog)))),
			flat, r.cfg.Duration < 5*time.Minute || r.cfg.RateFrac != 0.8)
	}
	if !r.cfg.NoBaseline && t.mongoURI != "" {
		raw, err := r.rawInsertMany(ctx, t.mongoURI, min(r.cfg.Duration, 10*time.Second))
		if err != nil {
			res.note("raw InsertMany baseline failed: %v", err)
		} else {
			res.Baselines = append(res.Baselines, raw)
			res.ratio("natter persisted msg/s / raw InsertMany docs/s", res.Persist.Rate, raw.Throughput)
			if rate == 0 {
				v := res.Persist.Rate / raw.Throughput
				res.check("persist: sustained persisted msg/s >= 60% of raw InsertMany into the same store",
					fmt.Sprintf("%.1f%% (%s of %s)", v*100, fnum(res.Persist.Rate), fnum(raw.Throughput)), v >= 0.6, false)
			}
		}
	}
	return append(out, res), nil
}

func maxBacklog(b []uint64) uint64 {
	var m uint64
	for _, v := range b {
		m = max(m, v)
	}
	return m
}

// persistOnce runs one persist window on t.
func (r *runner) persistOnce(ctx context.Context, t *target, conns int, rate float64, dur time.Duration, name string) (*Result, error) {
	if t.waitBacklog(ctx, 2*time.Minute) < 0 {
		return nil, fmt.Errorf("persist: the PERSIST backlog did not drain before the run")
	}
	if name == "" {
		name = "persist flat out"
		if rate > 0 {
			name = fmt.Sprintf("persist at %s msg/s", commas(int64(rate)))
		}
	}
	base := r.jobBase("relay", t, t.urls)
	base.Duration = dur
	base.Prefix = fmt.Sprintf("%sp%d", r.prefix, int(rate))
	s := t.sample(ctx)
	d, err := r.drive(ctx, name, t, r.jobs(base, conns/2, rate), hooks{})
	ss := s.end()
	if err != nil {
		return nil, err
	}
	res := r.result("persist", name, d, conns, rate)
	res.Target = t.name()
	pf := &PersistFigures{}
	// The window: from go until the sends ended (the last sample taken
	// before or at start + dur).
	startAt, endAt := time.Unix(0, d.startNS), time.Unix(0, d.startNS).Add(dur)
	var first, last *persistSample
	var window []persistSample
	for i := range ss {
		sm := &ss[i]
		pf.Backlog = append(pf.Backlog, sm.backlog)
		if first == nil || !sm.at.After(startAt) {
			first = sm
		}
		if !sm.at.After(endAt.Add(500 * time.Millisecond)) {
			last = sm
			if sm.at.After(startAt) {
				window = append(window, *sm)
			}
		}
	}
	if first != nil && last != nil && last.at.After(first.at) {
		pf.Persisted = last.floor - first.floor
		pf.Rate = round3(float64(pf.Persisted) / last.at.Sub(first.at).Seconds())
	}
	if len(window) >= 4 {
		pf.BacklogSlope = round3(slope(window[len(window)/2:]))
	}
	pf.DrainSeconds = t.waitBacklog(ctx, 3*time.Minute)
	if b := ss[len(ss)-1].backlog; b > 0 && pf.DrainSeconds > 0 {
		pf.DrainRate = round3(float64(b) / pf.DrainSeconds)
	}
	res.Persist = pf
	res.PersistPending = int64(ss[len(ss)-1].backlog)
	return res, nil
}
