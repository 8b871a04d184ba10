package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-im/natter/jetstream/subjects"
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

// last is the latest backlog sample ("" before the first).
func (s *sampler) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return ""
	}
	return "backlog " + commas(int64(s.samples[len(s.samples)-1].backlog))
}

func (s *sampler) end() []persistSample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// waitBacklog waits until the PERSIST backlog is 0, showing it on the
// progress line; it returns how long that took, or -1 after timeout.
func (r *runner) waitBacklog(ctx context.Context, t *target, label string, timeout time.Duration) float64 {
	start := time.Now()
	var backlog atomic.Int64
	backlog.Store(-1)
	stop := r.ticker(label, func() string { return "backlog " + commas(backlog.Load()) })
	defer stop()
	ok := drainUntil(ctx, timeout, func() bool {
		b, _, err := t.persistInfo(ctx)
		if err == nil {
			backlog.Store(int64(b))
		}
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
		// The end-to-end rate, not the rate persisted during the sends:
		// flat-out senders starve the persist worker on a shared machine,
		// and the backlog they leave is drained afterwards.
		rate = float64(int(cal.Persist.EndToEndRate * r.cfg.RateFrac))
		if rate <= 0 {
			return out, fmt.Errorf("persist: calibration measured an end-to-end rate of %.0f msg/s (drained: %v)", cal.Persist.EndToEndRate, cal.Persist.DrainSeconds >= 0)
		}
	}
	res, err := r.persistOnce(ctx, t, conns, rate, r.cfg.Duration, "")
	if err != nil {
		return out, err
	}
	// Flat out, the sends and the archive share the cores, so the rate
	// persisted during the sends is bounded by the relay's; the role's own
	// rate is measured on a backlog, with the cores to itself.
	var alone *Result
	if rate == 0 {
		if alone, err = r.persistAlone(ctx, t, conns, r.cfg.Duration); err != nil {
			return append(out, res), err
		}
	}
	if r.cfg.RateFrac > 0 {
		p := res.Persist
		res.note("rate = %.0f%% of the calibration's end-to-end rate (%s msg/s: accepted over the time until all were in MongoDB)", r.cfg.RateFrac*100, fnum(out[0].Persist.EndToEndRate))
		// Flat: the backlog grows by less than 1% of the rate per second
		// over the second half (at least 5 msg/s of slack for noise).
		flat := p.BacklogSlope <= max(0.01*rate, 5)
		res.check(fmt.Sprintf("persist at %.0f%% of the measured rate for %v: backlog flat", r.cfg.RateFrac*100, r.cfg.Duration),
			fmt.Sprintf("backlog start %s, middle %s, end %s, max %s; slope %s msg/s over the second half", commas(int64(p.BacklogStart)),
				commas(int64(p.BacklogMid)), commas(int64(p.BacklogEnd)), commas(int64(p.BacklogMax)), fnum(p.BacklogSlope)),
			flat, r.cfg.Duration < 5*time.Minute || r.cfg.RateFrac != 0.8)
	}
	if !r.cfg.NoBaseline && t.mongoURI != "" {
		raw, err := r.rawInsertMany(ctx, t, t.mongoURI, min(r.cfg.Duration, 10*time.Second))
		if err != nil {
			res.note("raw InsertMany baseline failed: %v", err)
		} else {
			res.ratio("natter persisted msg/s during the sends / raw InsertMany docs/s", res.Persist.Rate, raw.Throughput)
			if alone == nil || alone.Persist.DrainSeconds <= 0 {
				res.Baselines = append(res.Baselines, raw)
			} else {
				alone.Baselines = append(alone.Baselines, raw)
				alone.ratio("natter persisted msg/s, the role alone / raw InsertMany docs/s", alone.Persist.Rate, raw.Throughput)
				v := alone.Persist.Rate / raw.Throughput
				alone.check("persist: sustained persisted msg/s >= 60% of raw InsertMany into the same store (the role alone, as the baseline)",
					fmt.Sprintf("%.1f%% (%s of %s)", v*100, fnum(alone.Persist.Rate), fnum(raw.Throughput)), v >= 0.6, false)
				res.note("during the sends the archive shares the cores with them, so it persists no faster than the relay accepts: %.1f%% of raw InsertMany; the role alone: the next run",
					res.Persist.Rate/raw.Throughput*100)
			}
		}
	}
	out = append(out, res)
	if alone != nil {
		out = append(out, alone)
	}
	return out, nil
}

// persistOnce runs one persist window on t.
func (r *runner) persistOnce(ctx context.Context, t *target, conns int, rate float64, dur time.Duration, name string) (*Result, error) {
	if r.waitBacklog(ctx, t, "persist: backlog before the run", 2*time.Minute) < 0 {
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
	d, err := r.drive(ctx, name, t, r.jobs(base, conns/2, rate), hooks{status: s.last})
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
		pf.BacklogSlopeAll = round3(slope(window))
	}
	if len(window) > 0 {
		pf.BacklogStart, pf.BacklogMid, pf.BacklogEnd = window[0].backlog, window[len(window)/2].backlog, window[len(window)-1].backlog
		for _, w := range window {
			pf.BacklogMax = max(pf.BacklogMax, w.backlog)
		}
	}
	pf.DrainSeconds = r.waitBacklog(ctx, t, name+": drain", 3*time.Minute)
	if b := ss[len(ss)-1].backlog; b > 0 && pf.DrainSeconds > 0 {
		pf.DrainRate = round3(float64(b) / pf.DrainSeconds)
	}
	if pf.DrainSeconds >= 0 {
		if secs := time.Since(startAt).Seconds(); secs > 0 {
			pf.EndToEndRate = round3(float64(d.acked) / secs)
		}
	}
	res.Persist = pf
	res.PersistPending = int64(ss[len(ss)-1].backlog)
	return res, nil
}

// persistAlone measures the persist role with the cores to itself, as the
// raw InsertMany baseline has them: the PERSIST consumer is paused while
// flat-out sends build a backlog for dur, then resumed, and the rate is the
// messages the consumer acked (stored in MongoDB) over the time until the
// backlog was gone. Server CPU is the target's over that time.
func (r *runner) persistAlone(ctx context.Context, t *target, conns int, dur time.Duration) (*Result, error) {
	if r.waitBacklog(ctx, t, "persist alone: backlog before the run", 2*time.Minute) < 0 {
		return nil, fmt.Errorf("persist: the PERSIST backlog did not drain before the run")
	}
	name := "persist alone: a backlog drained with the sends stopped"
	// The pause ends by itself should the bench die before it resumes.
	if _, err := t.js.PauseConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist, time.Now().Add(dur+5*time.Minute)); err != nil {
		return nil, fmt.Errorf("persist alone: pause %s: %w", subjects.ConsumerPersist, err)
	}
	resumed := false
	resume := func() error {
		if resumed {
			return nil
		}
		resumed = true
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, err := t.js.ResumeConsumer(rctx, subjects.StreamMsgs, subjects.ConsumerPersist)
		return err
	}
	defer func() { _ = resume() }()
	base := r.jobBase("relay", t, t.urls)
	base.Duration = dur
	base.Prefix = r.prefix + "pa"
	s := t.sample(ctx)
	d, err := r.drive(ctx, name+" (building it, "+subjects.ConsumerPersist+" paused)", t, r.jobs(base, conns/2, 0), hooks{status: s.last})
	s.end()
	if err != nil {
		return nil, err
	}
	backlog, floor0, err := t.persistInfo(ctx)
	if err != nil {
		return nil, err
	}
	srv0 := serverCPU(t)
	start := time.Now()
	if err := resume(); err != nil {
		return nil, fmt.Errorf("persist alone: resume %s: %w", subjects.ConsumerPersist, err)
	}
	// Every 100 ms: the time resolution of the rate.
	pf := &PersistFigures{Alone: true, Backlog: []uint64{backlog}}
	var last persistSample
	var left atomic.Int64
	left.Store(int64(backlog))
	stop := r.ticker(name, func() string { return "backlog " + commas(left.Load()) })
	lastSample := start
	ok := false
	for deadline := start.Add(3 * time.Minute); !ok && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
		b, f, err := t.persistInfo(ctx)
		if err != nil {
			continue
		}
		last = persistSample{time.Now(), b, f}
		left.Store(int64(b))
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			pf.Backlog = append(pf.Backlog, b)
		}
		ok = b == 0
	}
	stop()
	srv1 := serverCPU(t)
	res := r.result("persist", name, d, conns, 0)
	res.Target = t.name()
	res.PersistPending = int64(last.backlog)
	secs := last.at.Sub(start).Seconds()
	if !ok || secs <= 0 {
		pf.DrainSeconds = -1
		res.Persist = pf
		res.note("the backlog of %s did not drain within 3 minutes", commas(int64(backlog)))
		return res, nil
	}
	pf.Persisted = last.floor - floor0
	pf.DrainSeconds = round3(secs)
	pf.Rate = round3(float64(pf.Persisted) / secs)
	pf.DrainRate = pf.Rate
	pf.BacklogStart, pf.BacklogMax = backlog, backlog
	res.Persist = pf
	// The figures of this run are the drain's, not the sends'.
	res.Seconds, res.Throughput = round3(secs), pf.Rate
	res.Latency, res.AckLatency = nil, nil
	res.CPU = &CPU{Per: "msg", Count: float64(pf.Persisted)}
	if srv0 >= 0 && srv1 >= 0 {
		res.CPU.Server, res.CPU.ServerUs = d.serverFrom+", over the drain", float64((srv1 - srv0).Microseconds())
		res.CPU.ServerPIDs = d.serverPIDs
	}
	res.CPU.fill(secs)
	res.note("%s paused while %s sends (%s msg/s accepted, %s conns) built a backlog of %s; resumed, it stored them in MongoDB in %.2f s with nothing else running",
		subjects.ConsumerPersist, commas(int64(d.acked)), fnum(float64(d.acked)/max(d.seconds(), 1e-9)), commas(int64(conns)), commas(int64(backlog)), secs)
	return res, nil
}
