package bench

import (
	"context"
	"fmt"
	"time"
)

// driven is the merged outcome of a fleet run.
type driven struct {
	jobs       []*jobResult
	connected  int
	sent       uint64
	acked      uint64
	delivered  uint64
	lost       uint64
	errors     uint64
	dropped    int
	firstErr   string
	lat        *hist
	startNS    int64
	endNS      int64
	serverCPU  time.Duration // -1: unknown
	genCPU     time.Duration
	split      bool
	dialSecs   float64
	resumed    int
	lastResume int64
}

func (d *driven) seconds() float64 {
	if d.endNS <= d.startNS {
		return 0
	}
	return float64(d.endNS-d.startNS) / 1e9
}

// hooks customise a fleet run between go and the results.
type hooks struct {
	// during runs after go; it may send commands to the fleet (expect,
	// stop). Nil means nothing.
	during func(ctx context.Context, f *fleet) error
}

// serverCPU is the CPU time of the server side: this process with an
// in-process target, else the --edge-pid processes (-1: unknown).
func (r *runner) serverCPU(t *target) time.Duration {
	if t != nil && t.local {
		return selfCPU()
	}
	if len(r.cfg.EdgePIDs) == 0 {
		if t == nil {
			return selfCPU() // a raw baseline server runs in this process
		}
		return -1
	}
	var sum time.Duration
	for _, p := range r.cfg.EdgePIDs {
		c, err := pidCPU(p)
		if err != nil {
			return -1
		}
		sum += c
	}
	return sum
}

// drive runs jobs (one per generator) against t (nil: a raw baseline
// server in this process), printing a progress line every second.
func (r *runner) drive(ctx context.Context, label string, t *target, jobs []job, h hooks) (*driven, error) {
	procs := r.cfg.Procs > 0
	f, err := startFleet(ctx, r, jobs, procs)
	if err != nil {
		return nil, err
	}
	stopProgress := r.progress(label, f)
	defer stopProgress()
	if err := f.waitReady(ctx, 15*time.Minute); err != nil {
		f.kill()
		_, _ = f.wait(ctx)
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	srv0 := r.serverCPU(t)
	self0 := selfCPU()
	f.broadcast("go")
	if h.during != nil {
		if err := h.during(ctx, f); err != nil {
			f.kill()
			_, _ = f.wait(ctx)
			return nil, fmt.Errorf("%s: %w", label, err)
		}
	}
	res, err := f.wait(ctx)
	srv1 := r.serverCPU(t)
	self1 := selfCPU()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	d := &driven{jobs: res, lat: newHist(), serverCPU: -1}
	if srv0 >= 0 && srv1 >= 0 {
		d.serverCPU = srv1 - srv0
	}
	switch {
	case procs:
		d.split = d.serverCPU >= 0
	case t != nil && !t.local:
		d.split = d.serverCPU >= 0
		d.genCPU = self1 - self0
	}
	for _, j := range res {
		d.connected += j.Connected
		d.sent += j.Sent
		d.acked += j.Acked
		d.delivered += j.Delivered
		d.lost += j.Lost
		d.errors += j.Errors
		d.dropped += j.Dropped
		d.resumed += j.Resumed
		d.lastResume = max(d.lastResume, j.LastResumeNS)
		d.dialSecs = max(d.dialSecs, j.DialSeconds)
		if d.firstErr == "" {
			d.firstErr = j.FirstErr
		}
		d.lat.merge(j.Lat)
		if j.StartNS > 0 && (d.startNS == 0 || j.StartNS < d.startNS) {
			d.startNS = j.StartNS
		}
		d.endNS = max(d.endNS, j.EndNS)
		if procs {
			d.genCPU += time.Duration(j.CPUNs)
		}
	}
	return d, nil
}

// cpu fills the CPU figures for msgs messages over d's window.
func (d *driven) cpu(msgs uint64) *CPU {
	if d.serverCPU < 0 && !d.split {
		return nil
	}
	c := &CPU{Split: d.split}
	secs := d.seconds()
	if d.serverCPU >= 0 {
		c.ServerUs = float64(d.serverCPU.Microseconds())
	}
	c.GeneratorUs = float64(d.genCPU.Microseconds())
	if msgs > 0 {
		c.ServerUsPerMsg = round3(c.ServerUs / float64(msgs))
		c.GeneratorUsPerMsg = round3(c.GeneratorUs / float64(msgs))
	}
	if secs > 0 {
		c.ServerCores = round3(c.ServerUs / 1e6 / secs)
		c.GeneratorCores = round3(c.GeneratorUs / 1e6 / secs)
	}
	return c
}

// progress prints the fleet's counters every second until the returned
// func is called.
func (r *runner) progress(label string, f *fleet) func() {
	if r.cfg.Quiet {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		var prev snapshot
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := f.snap()
				line := fmt.Sprintf("[%s %3.0fs] connected %s  sent %s  delivered %s  errors %s  rate %s/s",
					label, time.Since(start).Seconds(), commas(s.Connected), commas(s.Sent), commas(s.Delivered), commas(s.Errors),
					commas(s.Delivered-prev.Delivered))
				if s.Resumed > 0 {
					line += "  resumed " + commas(s.Resumed)
				}
				fmt.Fprintln(r.stderr, line)
				prev = s
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// jobBase is a job with the fields every scenario sets.
func (r *runner) jobBase(kind string, t *target, urls []string) job {
	j := job{Kind: kind, URLs: urls, Prefix: r.prefix, Duration: r.cfg.Duration, Size: r.cfg.Size,
		SourceAddrs: r.cfg.SourceAddrs, DialConc: r.cfg.DialConc, DrainTimeout: r.cfg.DrainTimeout, Window: r.cfg.Window}
	if t != nil {
		j.Secret, j.KeyID, j.Audience, j.Issuer = t.key.Secret, t.key.ID, t.aud, t.iss
	}
	return j
}

// jobs splits n items over the generators: one job per --procs, else one.
func (r *runner) jobs(base job, n int, rate float64) []job {
	parts := split(n, max(r.cfg.Procs, 1))
	out := make([]job, 0, len(parts))
	for _, p := range parts {
		j := base
		j.From, j.To = p[0], p[1]
		if rate > 0 && n > 0 {
			j.Rate = rate * float64(p[1]-p[0]) / float64(n)
		}
		out = append(out, j)
	}
	return out
}
