package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Storm modes (--storm-mode): how the edge under test goes down.
const (
	// StormKill sends SIGKILL: the sockets drop with no bye, as when an
	// edge crashes or its machine goes away.
	StormKill = "kill"
	// StormGraceful sends SIGTERM: the edge closes its sockets over its
	// lame-duck interval (bye + 4010), then drains.
	StormGraceful = "graceful"
)

// stormClientsPerProc bounds the clients of one generator child, so that
// 10,000 clients go to two children and each stays far under the open-files
// limit (20,000 here) through the reconnects.
const stormClientsPerProc = 9_500

// stormSignal names what starts the storm in mode.
func stormSignal(mode string) string {
	if mode == StormGraceful {
		return "SIGTERM"
	}
	return "kill"
}

// storm connects --conns clients to one edge running as its own `natter
// edge` process on the in-process target's NATS, kills it (SIGKILL; with
// --storm-mode graceful: SIGTERM and wait for its exit), starts a new edge
// process on the same address at once, and measures how long until every
// client has reconnected and synced, and whether any acked message of the
// traffic that ran through the restart was lost.
func (r *runner) storm(ctx context.Context) ([]*Result, error) {
	if len(r.cfg.URLs) > 0 {
		return nil, errors.New("storm: needs the in-process target (it kills and restarts the edge)")
	}
	bin := r.cfg.NatterBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("storm: natter binary: %w (give --natter-bin)", err)
		}
		bin = exe
	}
	mode := r.cfg.StormMode
	var verbose io.Writer
	if r.cfg.Verbose {
		verbose = r.stderr
	}
	conns := r.cfg.conns("storm")
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: 1, edgeBin: bin, verbose: verbose})
	if err != nil {
		return nil, err
	}
	defer t.close()
	rate := r.cfg.Rate
	if rate == 0 {
		rate = 200
	}
	base := r.jobBase("storm", t, t.urls[:1])
	gens := 1
	if r.cfg.Procs > 0 {
		gens = max(r.cfg.Procs, (conns+stormClientsPerProc-1)/stormClientsPerProc)
	}
	var jobs []job
	for _, p := range split(conns, gens) {
		j := base
		j.From, j.To = p[0], p[1]
		j.Rate = rate * float64(p[1]-p[0]) / float64(max(conns, 1))
		jobs = append(jobs, j)
	}
	pairs := max(1, min(50, conns/2)/len(jobs))
	for i := range jobs {
		jobs[i].TrafficPairs = pairs
		jobs[i].Presence = r.cfg.StormPresence
	}
	fig := &StormFigures{Mode: mode, Clients: conns, Presence: r.cfg.StormPresence}
	pids := []int{t.eprocs[0].pid()}
	var tKill time.Time
	var subs0 uint64          // the NATS server's subscription changes before the kill
	var edgeCPU time.Duration // of the old edge process, from go to the kill
	name := fmt.Sprintf("storm %s clients, edge %s", commas(int64(conns)), map[string]string{StormKill: "killed", StormGraceful: "stopped"}[mode])
	if r.cfg.StormPresence > 0 {
		name += fmt.Sprintf(", presence of %d each", r.cfg.StormPresence)
	}
	d, err := r.drive(ctx, name, t, jobs, hooks{during: func(ctx context.Context, f *fleet) error {
		old := t.eprocs[0]
		cpu0, _ := pidCPU(old.pid())
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		// Every job notes its clients' reconnect and sync counters before
		// the edge goes down; a client has resumed once both moved.
		if err := f.mark(ctx, time.Minute); err != nil {
			return err
		}
		cpu1, _ := pidCPU(old.pid())
		edgeCPU = cpu1 - cpu0
		subs0 = t.subChanges()
		tKill = time.Now()
		if mode == StormGraceful {
			if !old.term(2 * time.Minute) {
				fmt.Fprintf(r.stderr, "storm: the edge did not stop within 2m of its SIGTERM: killed\n")
			}
		} else {
			old.kill()
		}
		tGone := time.Now()
		if old.err != nil {
			fig.OldEdgeExit = old.err.Error()
		} else {
			fig.OldEdgeExit = "exit status 0"
		}
		t.eprocs[0] = nil
		p, tries, err := t.restartEdgeProc(ctx, bin, old.addr, 10*time.Second, verbose)
		if err != nil {
			return fmt.Errorf("storm: restart the edge: %w", err)
		}
		t.eprocs[0] = p
		pids = append(pids, p.pid())
		fig.StopSeconds = round3(tGone.Sub(tKill).Seconds())
		fig.StartSeconds = round3(p.ready.Sub(tGone).Seconds())
		fig.DownSeconds = round3(p.ready.Sub(tKill).Seconds())
		fig.BindTries = tries
		want := f.snap().Connected
		if !drainUntil(ctx, time.Minute, func() bool { return f.snap().Resumed >= want }) {
			fmt.Fprintf(r.stderr, "storm: %d of %d clients resumed after 1m\n", f.snap().Resumed, want)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		if n := t.subChanges(); n > 0 {
			fig.SubChanges = n - subs0
		}
		f.broadcast("stop")
		return nil
	}})
	if err != nil {
		return nil, err
	}
	res := r.result("storm", name, d, conns, rate)
	res.Procs = len(jobs)
	res.Target = t.name() + ", edge: natter edge process"
	if p := t.eprocs[0]; p != nil {
		if c, err := pidCPU(p.pid()); err == nil {
			edgeCPU += c
		}
		stormCPU(res.CPU, edgeCPU, d.seconds())
		fig.EdgeCPUSeconds = round3(edgeCPU.Seconds())
		if d.lastResume > 0 {
			fig.AfterRestartSeconds = round3(time.Unix(0, d.lastResume).Sub(p.ready).Seconds())
		}
	}
	fig.Resumed = d.resumed
	if d.lastResume > 0 {
		fig.ResumeSeconds = round3(time.Unix(0, d.lastResume).Sub(tKill).Seconds())
	}
	var since []float64
	for _, j := range d.jobs {
		for _, ns := range j.ResumeNS {
			since = append(since, time.Unix(0, ns).Sub(tKill).Seconds())
		}
	}
	fig.ResumeP50, fig.ResumeP90, fig.ResumeP99 = quantile(since, 0.5), quantile(since, 0.9), quantile(since, 0.99)
	fig.ResumedBySecond = bySecond(since)
	var first []float64
	var setup float64
	for _, j := range d.jobs {
		fig.PresenceEvents += j.PresenceEvents
		setup = max(setup, j.PresenceSetupSeconds)
		fig.Dials += j.Dials
		fig.FailedDials += j.FailedDials
		for _, ns := range j.FirstDialNS {
			first = append(first, time.Unix(0, ns).Sub(tKill).Seconds())
		}
	}
	fig.FirstDialP50, fig.FirstDialP99, fig.FirstDialMax = quantile(first, 0.5), quantile(first, 0.99), quantile(first, 1)
	fig.Acked, fig.Received, fig.Lost = d.acked, d.delivered, d.lost
	if fig.Presence > 0 {
		if fig.ResumeSeconds > 0 {
			fig.PresencePerSecond = round3(float64(fig.PresenceEvents) / fig.ResumeSeconds)
		}
		res.note("presence: clients in groups of %d, each watching the %d others (set up in %.1f s before go); %d presence events from just before the kill to the end",
			fig.Presence+1, fig.Presence, setup, fig.PresenceEvents)
	}
	if fig.SubChanges > 0 {
		res.note("storm: %s subscriptions made or dropped at the NATS server from the kill to the end", commas(int64(fig.SubChanges)))
	}
	res.Storm = fig
	res.note("edge under test: `%s edge` (pids %s) on the in-process natter's NATS; %s, then a new edge process started at once on the same address",
		bin, joinInts(pids), map[string]string{StormKill: "killed with SIGKILL", StormGraceful: "stopped with SIGTERM (lame duck, then drain)"}[mode])
	res.note("traffic through the restart: %d pairs at %s msg/s in total; clients in %d generator(s); the SDK reconnects after a random 0-100 ms, then backs off exponentially with full jitter (200 ms, 400 ms, ... up to 5 s) while the edge is down",
		pairs*len(jobs), fnum(rate), len(jobs))
	scaled := conns < 10_000
	if mode == StormKill {
		res.check("storm: 10,000 clients, edge killed and restarted: all resumed within 10 s", fmt.Sprintf("%d/%d resumed %.2f s after the kill", fig.Resumed, d.connected, fig.ResumeSeconds),
			fig.Resumed == d.connected && d.connected == conns && fig.ResumeSeconds <= 10, scaled)
	}
	res.check("storm: nothing lost", fmt.Sprintf("%d of %d acked messages lost", fig.Lost, fig.Acked), fig.Lost == 0 && fig.Received >= fig.Acked, scaled)
	return []*Result{res}, nil
}

// subChanges is the in-process NATS server's count of subscriptions made
// and dropped (0 when unknown).
func (t *target) subChanges() uint64 {
	if t.dev == nil || t.dev.NATSServer() == nil {
		return 0
	}
	sz, err := t.dev.NATSServer().Subsz(nil)
	if err != nil || sz.SublistStats == nil {
		return 0
	}
	return sz.NumInserts + sz.NumRemoves
}

// stormCPU adds the edge processes' CPU to c, whose server side is this
// process (NATS, the workers, the store).
func stormCPU(c *CPU, edge time.Duration, secs float64) {
	if c == nil || !c.known() || edge <= 0 {
		return
	}
	c.ServerUs += float64(edge.Microseconds())
	c.Server += " + the edge processes (/proc/<pid>/stat: the old one from go to the kill, the new one from its start)"
	c.fill(secs)
}

// bySecond counts the times in v (seconds) at or before 1, 2, ... up to
// the last one.
func bySecond(v []float64) []int {
	var out []int
	slices.Sort(v)
	n := 0
	for s := 1.0; len(v) > 0 && s < v[len(v)-1]+1; s++ {
		for n < len(v) && v[n] <= s {
			n++
		}
		out = append(out, n)
	}
	return out
}

// quantile is the q-quantile of v (sorted in place), rounded to ms; 0 when
// v is empty.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	i := min(len(v)-1, int(q*float64(len(v))))
	return round3(v[i])
}
