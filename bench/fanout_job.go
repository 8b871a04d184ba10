package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/client"
)

// fanoutSender is the user that creates the group and sends into it.
func fanoutSender(prefix string) string { return prefix + "f0" }

// fanoutMember is member i of the group.
func fanoutMember(prefix string, i int) string { return fmt.Sprintf("%sm%d", prefix, i) }

// runFanoutJob connects members [From, To) of group Conv (member i on edge
// URLs[i % len]); with Sender it also sends into the group, then reports
// how many it sent. Members count deliveries until they have what the
// sender sent (the expect command).
func runFanoutJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	es := &errSink{lv: lv}
	users := make([]string, 0, j.To-j.From)
	for i := j.From; i < j.To; i++ {
		users = append(users, fanoutMember(j.Prefix, i))
	}
	t0 := time.Now()
	cs := dialAll(ctx, spec, users, func(i int) []string { return []string{j.URLs[(j.From+i)%len(j.URLs)]} }, j.DialConc, j.From, lv, es)
	defer closeAll(cs)
	var sender *client.Client
	if j.Sender {
		if sender, err = spec.dial(ctx, fanoutSender(j.Prefix), j.URLs[:1], j.To); err != nil {
			return nil, fmt.Errorf("bench: fanout sender: %w", err)
		}
		defer sender.Close()
		discard(sender)
	}
	res := &jobResult{Lat: newHist(), DialSeconds: time.Since(t0).Seconds()}
	var members []*client.Client
	for _, c := range cs {
		if c != nil {
			members = append(members, c)
		}
	}
	res.Connected = len(members)
	counts := make([]atomic.Uint64, len(members))
	var last atomic.Int64
	for i, c := range members {
		go func() {
			for m := range c.Messages() {
				if m.Conv != j.Conv {
					continue
				}
				now := time.Now()
				if t, ok := sentAt(m.Body); ok {
					res.Lat.add(now.Sub(t))
				}
				counts[i].Add(1)
				lv.delivered.Add(1)
				last.Store(now.UnixNano())
			}
		}()
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	res.StartNS = start.UnixNano()
	if sender != nil {
		end := start.Add(j.Duration)
		sendCtx, cancel := context.WithDeadline(ctx, end.Add(j.DrainTimeout))
		var acked atomic.Uint64
		send := func(due time.Time) {
			lv.sent.Add(1)
			if _, err := sender.Send(sendCtx, j.Conv, body(due, j.Size)); err != nil {
				es.add(err)
				return
			}
			acked.Add(1)
		}
		if j.Rate > 0 {
			schedule(sendCtx, start, end, j.Rate, 10_000, func(_ int, due time.Time) { send(due) })
		} else {
			var sw sync.WaitGroup
			for w := 0; w < max(j.Window, 1); w++ {
				sw.Add(1)
				go func() {
					defer sw.Done()
					for time.Now().Before(end) && sendCtx.Err() == nil {
						send(time.Now())
					}
				}()
			}
			sw.Wait()
		}
		cancel()
		res.Sent = acked.Load()
		ctl.sent(res.Sent)
	}
	expect, err := ctl.waitExpect(ctx)
	if err != nil {
		return nil, err
	}
	drainUntil(ctx, j.DrainTimeout, func() bool {
		for i := range counts {
			if counts[i].Load() < expect {
				return false
			}
		}
		return true
	})
	res.EndNS = endNS(last.Load())
	for i := range counts {
		d := counts[i].Load()
		res.Delivered += d
		if d < expect {
			res.Lost += expect - d
		}
	}
	res.Acked = expect * uint64(len(members))
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}

// runRawFanoutJob is fanout on raw nats-server over WebSocket: connections
// [From, To) subscribe to one subject; with Sender one more connection
// publishes to it (flushing every Window messages in a closed loop).
func runRawFanoutJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	es := &errSink{lv: lv}
	subj := "bench." + j.Prefix + ".fanout"
	t0 := time.Now()
	cs := rawConnectAll(ctx, j.URLs[0], spec, j.To-j.From, j.From, j.DialConc, lv, es)
	defer rawCloseAll(cs)
	res := &jobResult{Lat: newHist(), DialSeconds: time.Since(t0).Seconds()}
	var counts []*atomic.Uint64
	var last atomic.Int64
	for _, nc := range cs {
		if nc == nil {
			continue
		}
		cnt := new(atomic.Uint64)
		s, err := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			if t, ok := sentAt(string(m.Data)); ok {
				res.Lat.add(now.Sub(t))
			}
			cnt.Add(1)
			lv.delivered.Add(1)
			last.Store(now.UnixNano())
		})
		if err != nil {
			es.add(err)
			continue
		}
		_ = s.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			es.add(err)
			continue
		}
		counts = append(counts, cnt)
	}
	res.Connected = len(counts)
	var pub *nats.Conn
	if j.Sender {
		if pub, err = rawConnect(j.URLs[0], spec, j.To); err != nil {
			return nil, err
		}
		defer pub.Close()
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	res.StartNS = start.UnixNano()
	if pub != nil {
		end := start.Add(j.Duration)
		var sent atomic.Uint64
		do := func(due time.Time) {
			lv.sent.Add(1)
			if err := pub.Publish(subj, []byte(body(due, j.Size))); err != nil {
				es.add(err)
				return
			}
			sent.Add(1)
		}
		if j.Rate > 0 {
			schedule(ctx, start, end, j.Rate, 10_000, func(_ int, due time.Time) { do(due) })
		} else {
			for k := 1; time.Now().Before(end) && ctx.Err() == nil; k++ {
				do(time.Now())
				if k%max(j.Window, 1) == 0 {
					if err := pub.FlushTimeout(10 * time.Second); err != nil {
						es.add(err)
					}
				}
			}
		}
		_ = pub.FlushTimeout(10 * time.Second)
		res.Sent = sent.Load()
		ctl.sent(res.Sent)
	}
	expect, err := ctl.waitExpect(ctx)
	if err != nil {
		return nil, err
	}
	drainUntil(ctx, j.DrainTimeout, func() bool {
		for _, c := range counts {
			if c.Load() < expect {
				return false
			}
		}
		return true
	})
	res.EndNS = endNS(last.Load())
	for _, c := range counts {
		d := c.Load()
		res.Delivered += d
		if d < expect {
			res.Lost += expect - d
		}
	}
	res.Acked = expect * uint64(len(counts))
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}
