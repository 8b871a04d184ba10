package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// idle holds --conns idle connections for --hold and measures the edge
// process's RSS growth and CPU per connection; then the same against a
// plain nats-server with WebSocket.
func (r *runner) idle(ctx context.Context) ([]*Result, error) {
	conns := r.cfg.conns("idle")
	var raw *Result
	if !r.cfg.NoBaseline {
		var err error
		if raw, err = r.idleRaw(ctx, conns); err != nil {
			return nil, err
		}
	}
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: r.cfg.Edges})
	if err != nil {
		return nil, err
	}
	defer t.close()
	pid := 0
	if !t.local {
		if len(t.pids) == 0 {
			return nil, errors.New("idle: no edge process found on this machine: give --edge-pid of the edge process to measure")
		}
		pid = t.pids[0]
	}
	base := r.jobBase("idle", t, t.urls)
	res, err := r.idleOnce(ctx, fmt.Sprintf("idle %s connections", commas(int64(conns))), t, base, conns, pid)
	if err != nil {
		return nil, err
	}
	res.Target = t.name()
	if t.local {
		ping := r.cfg.PingInterval
		if ping <= 0 {
			ping = 25 * time.Second
		}
		res.note("edge heartbeat (ping) every %v; the SDK answers with pongs", ping)
	}
	if raw != nil {
		res.Baselines = append(res.Baselines, raw)
		res.ratio("natter / raw nats-server RSS per connection", res.Idle.RSSPerConnKiB, raw.Idle.RSSPerConnKiB)
	}
	scaled := conns < 10_000
	res.check("idle, 10,000 connections on one edge: <= 16 KiB RSS per connection", fnum(res.Idle.RSSPerConnKiB)+" KiB", res.Idle.RSSPerConnKiB <= 16, scaled)
	res.check("idle, 10,000 connections on one edge: <= 1% of a core with heartbeats on", fmt.Sprintf("%.2f%% of a core for the connections (the whole process %.2f%%, %.2f%% at rest before they connected)",
		res.Idle.ConnsCorePercent, res.Idle.CPUCorePercent, res.Idle.RestCorePercent), res.Idle.ConnsCorePercent <= 1, scaled)
	return []*Result{res}, nil
}

func (r *runner) idleRaw(ctx context.Context, conns int) (*Result, error) {
	rs, err := startRawServer(r.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	base := r.jobBase("rawidle", nil, []string{rs.wsURL()})
	base.Prefix = r.prefix + "ri"
	res, err := r.idleOnce(ctx, "raw nats-server ws idle", nil, base, conns, 0)
	if err != nil {
		return nil, err
	}
	res.Scenario = "baseline"
	res.Target = "in-process nats-server (websocket)"
	res.note("one subscription per connection, as natter's edge holds per user")
	return res, nil
}

// idleOnce connects conns clients, holds them, and measures process pid
// (0: this process).
func (r *runner) idleOnce(ctx context.Context, name string, t *target, base job, conns, pid int) (*Result, error) {
	debug.FreeOSMemory()
	rss0, err := rssOf(pid)
	if err != nil {
		return nil, err
	}
	fig := &IdleFigures{Pid: pid, RSSBeforeMiB: round3(float64(rss0) / (1 << 20)), HoldSeconds: r.cfg.Hold.Seconds()}
	// The process's own background CPU, before any client: a measurement
	// window, like the hold.
	rest := min(10*time.Second, r.cfg.Hold/2)
	ra, err := cpuOf(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-time.After(rest):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rb, err := cpuOf(pid)
	if err != nil {
		return nil, err
	}
	restSecs := time.Since(t0).Seconds()
	fig.RestSeconds = round3(restSecs)
	fig.RestCorePercent = round3((rb - ra).Seconds() / restSecs * 100)
	d, err := r.drive(ctx, name, t, r.jobs(base, conns, 0), hooks{during: func(ctx context.Context, f *fleet) error {
		cpu0, err := cpuOf(pid)
		if err != nil {
			return err
		}
		t0 := time.Now()
		select {
		case <-time.After(r.cfg.Hold):
		case <-ctx.Done():
			return ctx.Err()
		}
		cpu1, err := cpuOf(pid)
		if err != nil {
			return err
		}
		rss1, err := rssOf(pid)
		if err != nil {
			return err
		}
		held := time.Since(t0).Seconds()
		fig.RSSAfterMiB = round3(float64(rss1) / (1 << 20))
		fig.HoldSeconds = round3(held)
		fig.CPUCorePercent = round3((cpu1 - cpu0).Seconds() / held * 100)
		fig.ConnsCorePercent = round3(max(0, fig.CPUCorePercent-fig.RestCorePercent))
		if n := f.snap().Connected; n > 0 {
			fig.RSSPerConnKiB = round3(float64(rss1-rss0) / 1024 / float64(n))
			fig.CPUUsPerConnS = round3(float64((cpu1 - cpu0).Microseconds()) / held / float64(n))
		}
		f.broadcast("stop")
		return nil
	}})
	if err != nil {
		return nil, err
	}
	fig.DialSeconds = round3(d.dialSecs)
	res := r.result("idle", name, d, conns, 0)
	res.Idle = fig
	// No messages: CPU per connection held for a second.
	res.CPU = d.cpu("conn-s", float64(d.connected)*d.seconds())
	if d.dropped > 0 {
		res.note("%d connections dropped or reconnected while idle", d.dropped)
	}
	if r.cfg.Procs == 0 && pid == 0 {
		res.note("the generator ran in the measured process: RSS and CPU include the clients (use --procs 1)")
	}
	return res, nil
}
