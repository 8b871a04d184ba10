package bench

import (
	"context"
	"fmt"
	"strings"
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
	ackLat     *hist
	startNS    int64
	endNS      int64
	dialSecs   float64
	warmUpSecs float64
	resumed    int
	lastResume int64
	srcAddrs   map[string]uint64

	serverCPU  time.Duration // -1: unknown
	serverEnd  time.Duration // serverCPU(t) when the window ended (-1: unknown): where a drain after it starts counting
	genCPU     time.Duration
	split      bool   // genCPU measured apart from serverCPU
	serverFrom string // what serverCPU measures; "" unknown
	serverPIDs []int
	genFrom    string
	goRuntime  *GoRuntime // the in-process server's scheduler and GC; nil otherwise
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
	// status adds to the progress line (persist: the backlog). Nil means
	// nothing.
	status func() string
}

// serverCPU is the CPU time of the server side: this process with an
// in-process target or a raw baseline server (t nil), else the sum of the
// target's processes from /proc/<pid>/stat (-1: unknown).
func serverCPU(t *target) time.Duration {
	if t == nil || t.local {
		return selfCPU()
	}
	if len(t.pids) == 0 {
		return -1
	}
	var sum time.Duration
	for _, p := range t.pids {
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
//
// CPU: the server side is this process (getrusage) when it runs the server
// (in-process target, raw baselines), else the target's processes
// (/proc/<pid>/stat), read at go and after the last result. The generator
// side is the children's own CPU from go to their result with --procs,
// else this process's when the server runs elsewhere; with an in-process
// server and --procs 0 the two cannot be told apart.
func (r *runner) drive(ctx context.Context, label string, t *target, jobs []job, h hooks) (*driven, error) {
	procs := r.cfg.Procs > 0
	if procs && r.cfg.GenCPUProfile != "" {
		jobs = append([]job(nil), jobs...)
		for i := range jobs {
			jobs[i].CPUProfile = fmt.Sprintf("%s.%d", r.cfg.GenCPUProfile, r.genProf)
			r.genProf++
			fmt.Fprintf(r.stderr, "bench: %s: generator %d writes its CPU profile to %s\n", label, i, jobs[i].CPUProfile)
		}
	}
	f, err := startFleet(ctx, r, jobs, procs)
	if err != nil {
		return nil, err
	}
	stopProgress := r.progress(label, f, h.status)
	defer stopProgress()
	if err := f.waitReady(ctx, 15*time.Minute); err != nil {
		f.kill()
		_, _ = f.wait(ctx)
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	srv0 := serverCPU(t)
	self0 := selfCPU()
	inproc := t == nil || t.local
	var rt0 *runtimeSample
	if inproc {
		rt0 = readRuntime()
	}
	stopTrace := r.startTrace(label)
	f.broadcast("go")
	if h.during != nil {
		if err := h.during(ctx, f); err != nil {
			f.kill()
			_, _ = f.wait(ctx)
			return nil, fmt.Errorf("%s: %w", label, err)
		}
	}
	res, err := f.wait(ctx)
	stopTrace()
	srv1 := serverCPU(t)
	self1 := selfCPU()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	d := &driven{jobs: res, lat: newHist(), ackLat: newHist(), serverCPU: -1, serverEnd: srv1}
	if rt0 != nil {
		d.goRuntime = goRuntimeSince(rt0)
	}
	if srv0 >= 0 && srv1 >= 0 {
		d.serverCPU = srv1 - srv0
	}
	switch {
	case inproc:
		d.serverFrom = "this process, getrusage"
	case d.serverCPU >= 0:
		d.serverFrom = fmt.Sprintf("pids %s, /proc/<pid>/stat, %s", joinInts(t.pids), t.pidsFrom)
		d.serverPIDs = t.pids
	}
	switch {
	case procs:
		d.split = true
		d.genFrom = fmt.Sprintf("%d child process(es), getrusage from go to result", len(jobs))
	case !inproc:
		d.split = true
		d.genCPU = self1 - self0
		d.genFrom = "this process, getrusage"
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
		d.warmUpSecs = max(d.warmUpSecs, j.WarmUpSeconds)
		if d.firstErr == "" {
			d.firstErr = j.FirstErr
		}
		d.lat.merge(j.Lat)
		if j.AckLat != nil {
			d.ackLat.merge(j.AckLat)
		}
		if j.StartNS > 0 && (d.startNS == 0 || j.StartNS < d.startNS) {
			d.startNS = j.StartNS
		}
		d.endNS = max(d.endNS, j.EndNS)
		if procs {
			d.genCPU += time.Duration(j.CPUNs)
		}
		for a, n := range j.SourceAddrs {
			if d.srcAddrs == nil {
				d.srcAddrs = map[string]uint64{}
			}
			d.srcAddrs[a] += n
		}
	}
	return d, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// cpu is the CPU figures of d's window per count units (per: "msg",
// "delivery", "page", "conn-s").
func (d *driven) cpu(per string, count float64) *CPU {
	c := &CPU{Split: d.split, Server: d.serverFrom, ServerPIDs: d.serverPIDs, Generator: d.genFrom, Per: per, Count: count, ServerRuntime: d.goRuntime}
	if d.serverCPU >= 0 && c.known() {
		c.ServerUs = float64(d.serverCPU.Microseconds())
	}
	c.GeneratorUs = float64(d.genCPU.Microseconds())
	c.fill(d.seconds())
	return c
}

// fill computes the per-unit and per-second figures over secs.
func (c *CPU) fill(secs float64) {
	if c.Count > 0 {
		c.ServerUsPerMsg = round3(c.ServerUs / c.Count)
		c.GeneratorUsPerMsg = round3(c.GeneratorUs / c.Count)
	}
	if secs > 0 {
		c.ServerCores = round3(c.ServerUs / 1e6 / secs)
		c.GeneratorCores = round3(c.GeneratorUs / 1e6 / secs)
	}
}

// progress prints the fleet's counters every second until the returned
// func is called: connected, sent, delivered, errors, and the current
// rates (sent and delivered over the last second); status adds to it.
func (r *runner) progress(label string, f *fleet, status func() string) func() {
	var prev snapshot
	return r.ticker(label, func() string {
		s := f.snap()
		line := fmt.Sprintf("connected %s  sent %s  delivered %s  errors %s  rate %s/s sent, %s/s delivered",
			commas(s.Connected), commas(s.Sent), commas(s.Delivered), commas(s.Errors),
			commas(s.Sent-prev.Sent), commas(s.Delivered-prev.Delivered))
		if s.Resumed > 0 {
			line += "  resumed " + commas(s.Resumed)
		}
		if status != nil {
			if x := status(); x != "" {
				line += "  " + x
			}
		}
		prev = s
		return line
	})
}

// ticker prints "[label Ns] line()" on stderr every second until the
// returned func is called (nothing with --quiet).
func (r *runner) ticker(label string, line func() string) func() {
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
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(r.stderr, "[%s %3.0fs] %s\n", label, time.Since(start).Seconds(), line())
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
