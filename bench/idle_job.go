package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// runIdleJob connects clients [From, To) and holds them until stop.
func runIdleJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	es := &errSink{lv: lv}
	users := make([]string, 0, j.To-j.From)
	for i := j.From; i < j.To; i++ {
		users = append(users, fmt.Sprintf("%si%d", j.Prefix, i))
	}
	t0 := time.Now()
	cs := dialAll(ctx, spec, users, func(i int) []string { return []string{j.URLs[(j.From+i)%len(j.URLs)]} }, j.DialConc, j.From, lv, es)
	defer closeAll(cs)
	res := &jobResult{DialSeconds: time.Since(t0).Seconds(), Connected: int(lv.connected.Load())}
	for _, c := range cs {
		if c != nil {
			discard(c)
		}
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	res.StartNS = time.Now().UnixNano()
	select {
	case <-ctl.stop:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.EndNS = time.Now().UnixNano()
	for _, c := range cs {
		if c == nil {
			continue
		}
		if c.Err() != nil || c.Stats().Reconnects > 0 {
			res.Dropped++
		}
	}
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}

// runRawIdleJob connects raw nats.go WebSocket clients [From, To) and holds
// them until stop.
func runRawIdleJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	es := &errSink{lv: lv}
	t0 := time.Now()
	cs := rawConnectAll(ctx, j.URLs[0], spec, j.To-j.From, j.From, j.DialConc, lv, es)
	defer rawCloseAll(cs)
	res := &jobResult{DialSeconds: time.Since(t0).Seconds(), Connected: int(lv.connected.Load())}
	// Like natter's edge, one subscription per connected user.
	for i, nc := range cs {
		if nc != nil {
			if _, err := nc.Subscribe(fmt.Sprintf("bench.%s.idle.%d", j.Prefix, j.From+i), func(*nats.Msg) {}); err != nil {
				es.add(err)
			}
		}
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	res.StartNS = time.Now().UnixNano()
	select {
	case <-ctl.stop:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.EndNS = time.Now().UnixNano()
	for _, nc := range cs {
		if nc != nil && !nc.IsConnected() {
			res.Dropped++
		}
	}
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}
