package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// storm connects --conns clients to one edge, stops that edge (lame duck)
// and starts a new one on the same port, and measures how long until every
// client has reconnected and synced, and whether any acked message of the
// traffic that ran through it was lost.
func (r *runner) storm(ctx context.Context) ([]*Result, error) {
	if len(r.cfg.URLs) > 0 {
		return nil, errors.New("storm: needs the in-process target (it stops and restarts the edge)")
	}
	conns := r.cfg.conns("storm")
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: 1, separateEdge: true})
	if err != nil {
		return nil, err
	}
	defer t.close()
	rate := r.cfg.Rate
	if rate == 0 {
		rate = 200
	}
	base := r.jobBase("storm", t, t.urls[:1])
	jobs := r.jobs(base, conns, rate)
	pairs := max(1, min(50, conns/2)/len(jobs))
	for i := range jobs {
		jobs[i].TrafficPairs = pairs
	}
	fig := &StormFigures{Clients: conns}
	var t0, t1 time.Time
	name := fmt.Sprintf("storm %s clients", commas(int64(conns)))
	d, err := r.drive(ctx, name, t, jobs, hooks{during: func(ctx context.Context, f *fleet) error {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		addr := t.edges[0].Addr()
		t0 = time.Now()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := t.edges[0].Shutdown(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(r.stderr, "storm: edge shutdown: %v\n", err)
		}
		t.edges[0] = nil
		for try := 0; ; try++ {
			e, err := t.startEdge(ctx, addr)
			if err == nil {
				t.edges[0] = e
				break
			}
			if try == 50 {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
		t1 = time.Now()
		fig.DownSeconds = round3(t1.Sub(t0).Seconds())
		want := f.snap().Connected
		if !drainUntil(ctx, time.Minute, func() bool { return f.snap().Resumed >= want }) {
			fmt.Fprintf(r.stderr, "storm: %d of %d clients resumed after 1m\n", f.snap().Resumed, want)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		f.broadcast("stop")
		return nil
	}})
	if err != nil {
		return nil, err
	}
	res := r.result("storm", name, d, conns, rate)
	res.Target = t.name()
	fig.Resumed = d.resumed
	if d.lastResume > 0 {
		fig.ResumeSeconds = round3(time.Unix(0, d.lastResume).Sub(t0).Seconds())
		fig.AfterRestartSeconds = round3(time.Unix(0, d.lastResume).Sub(t1).Seconds())
	}
	fig.Acked, fig.Received, fig.Lost = d.acked, d.delivered, d.lost
	res.Storm = fig
	res.note("traffic through the restart: %d pairs at %s msg/s in total; the edge stops with its lame-duck interval (--lame-duck) before the new one starts", pairs*len(jobs), fnum(rate))
	scaled := conns < 10_000
	res.check("storm: 10,000 clients, edge killed and restarted: all resumed within 10 s", fmt.Sprintf("%d/%d resumed in %.2f s", fig.Resumed, d.connected, fig.ResumeSeconds),
		fig.Resumed == d.connected && d.connected == conns && fig.ResumeSeconds <= 10, scaled)
	res.check("storm: nothing lost", fmt.Sprintf("%d of %d acked messages lost", fig.Lost, fig.Acked), fig.Lost == 0 && fig.Received >= fig.Acked, scaled)
	return []*Result{res}, nil
}
