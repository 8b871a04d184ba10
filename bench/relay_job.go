package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-im/natter/client"
)

// errSink keeps the first error and counts them all.
type errSink struct {
	lv    *live
	mu    sync.Mutex
	first string
	n     atomic.Uint64
}

func (e *errSink) add(err error) {
	e.n.Add(1)
	if e.lv != nil {
		e.lv.errors.Add(1)
	}
	e.mu.Lock()
	if e.first == "" {
		e.first = err.Error()
	}
	e.mu.Unlock()
}

func (e *errSink) firstErr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}

// dialAll dials users[i] (i in 0..len-1) with at most conc dials at once;
// urlsOf picks each one's edge URLs. Failed dials leave nil.
func dialAll(ctx context.Context, s clientSpec, users []string, urlsOf func(i int) []string, conc int, base int, lv *live, es *errSink) []*client.Client {
	out := make([]*client.Client, len(users))
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for i, u := range users {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := s.dial(ctx, u, urlsOf(i), base+i)
			if err != nil {
				es.add(fmt.Errorf("dial %s: %w", u, err))
				return
			}
			out[i] = c
			lv.connected.Add(1)
		}()
	}
	wg.Wait()
	return out
}

func closeAll(cs []*client.Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range cs {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); _ = c.Close() }()
	}
	wg.Wait()
}

// body is a message body of size bytes starting with the send time.
func body(t time.Time, size int) string {
	s := strconv.FormatInt(t.UnixNano(), 10) + " "
	if len(s) < size {
		s += strings.Repeat("x", size-len(s))
	}
	return s
}

// sentAt parses the send time at the start of a body.
func sentAt(b string) (time.Time, bool) {
	i := strings.IndexByte(b, ' ')
	if i < 0 {
		i = len(b)
	}
	ns, err := strconv.ParseInt(b[:i], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// schedule runs an open loop: it calls fire(k, due) for k = 0, 1, ... at
// rate per second from start until end, each in its own goroutine, with at
// most maxInflight running. due is the intended send time, which the body
// carries, so a generator that falls behind shows as latency.
func schedule(ctx context.Context, start, end time.Time, rate float64, maxInflight int, fire func(k int, due time.Time)) (issued int) {
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(float64(time.Second) / rate)
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if !due.Before(end) {
			return k
		}
		if d := time.Until(due); d > time.Millisecond {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return k
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return k
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fire(k, due)
		}()
	}
}

// drainUntil polls done every 5ms until it is true or timeout passes.
func drainUntil(ctx context.Context, timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// discard drains a client's Messages (the sender's own pushes).
func discard(c *client.Client) {
	go func() {
		for range c.Messages() {
		}
	}()
}

// runRelayJob runs pairs [From, To): sender s<i> sends to receiver r<i> in
// their direct conversation.
func runRelayJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	n := j.To - j.From
	es := &errSink{lv: lv}
	users := make([]string, 0, 2*n)
	for i := j.From; i < j.To; i++ {
		users = append(users, fmt.Sprintf("%ss%d", j.Prefix, i), fmt.Sprintf("%sr%d", j.Prefix, i))
	}
	t0 := time.Now()
	cs := dialAll(ctx, spec, users, func(i int) []string { return []string{j.URLs[(j.From+i/2)%len(j.URLs)]} }, j.DialConc, 2*j.From, lv, es)
	defer closeAll(cs)
	res := &jobResult{Lat: newHist(), AckLat: newHist(), DialSeconds: time.Since(t0).Seconds()}
	type pair struct {
		from, to  *client.Client
		conv      string
		acked     atomic.Uint64
		delivered atomic.Uint64
	}
	ps := make([]*pair, 0, n)
	var pmu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(j.DialConc, 1))
	for i := 0; i < n; i++ {
		from, to := cs[2*i], cs[2*i+1]
		if from == nil || to == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			conv, err := from.CreateDirect(ctx, to.User())
			if err != nil {
				es.add(fmt.Errorf("create conversation: %w", err))
				return
			}
			pmu.Lock()
			ps = append(ps, &pair{from: from, to: to, conv: conv.ID})
			pmu.Unlock()
		}()
	}
	wg.Wait()
	res.Connected = int(lv.connected.Load())
	if len(ps) == 0 {
		return nil, fmt.Errorf("bench: relay: no pair connected: %s", es.firstErr())
	}
	// Warm-up, outside the measured window: one message per pair, read
	// before the counting starts, so that the first sends into fresh
	// conversations (caches of heads and members still empty on the edge
	// and the workers) do not count as steady-state latency.
	tw := time.Now()
	warmUp(ctx, ps, func(p *pair) (*client.Client, *client.Client, string) { return p.from, p.to, p.conv }, es)
	res.WarmUpSeconds = time.Since(tw).Seconds()
	var last atomic.Int64
	for _, p := range ps {
		discard(p.from)
		go func() {
			for m := range p.to.Messages() {
				now := time.Now()
				if t, ok := sentAt(m.Body); ok {
					res.Lat.add(now.Sub(t))
				}
				p.delivered.Add(1)
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
	end := start.Add(j.Duration)
	res.StartNS = start.UnixNano()
	sendCtx, cancel := context.WithDeadline(ctx, end.Add(j.DrainTimeout))
	defer cancel()
	send := func(p *pair, due time.Time) {
		lv.sent.Add(1)
		if _, err := p.from.Send(sendCtx, p.conv, body(due, j.Size)); err != nil {
			es.add(err)
			return
		}
		res.AckLat.add(time.Since(due))
		p.acked.Add(1)
	}
	var sent atomic.Uint64
	if j.Rate > 0 {
		k := schedule(sendCtx, start, end, j.Rate, 100_000, func(k int, due time.Time) {
			send(ps[k%len(ps)], due)
		})
		sent.Store(uint64(k))
	} else if j.Window <= 1 {
		var sw sync.WaitGroup
		for _, p := range ps {
			sw.Add(1)
			go func() {
				defer sw.Done()
				for time.Now().Before(end) && sendCtx.Err() == nil {
					sent.Add(1)
					send(p, time.Now())
				}
			}()
		}
		sw.Wait()
	} else {
		// A window of Window sends in flight per sender: each batch is
		// pipelined with SendAll (one write for the batch; the edge
		// answers in order), the next batch goes once all are acked.
		var sw sync.WaitGroup
		for _, p := range ps {
			sw.Add(1)
			go func() {
				defer sw.Done()
				msgs := make([]client.Outgoing, j.Window)
				for time.Now().Before(end) && sendCtx.Err() == nil {
					due := time.Now()
					b := body(due, j.Size)
					for i := range msgs {
						msgs[i] = client.Outgoing{Conv: p.conv, Body: b}
					}
					sent.Add(uint64(len(msgs)))
					lv.sent.Add(int64(len(msgs)))
					acks, err := p.from.SendAll(sendCtx, msgs)
					if err != nil {
						es.add(err)
					}
					for _, a := range acks {
						if a.Seq > 0 {
							res.AckLat.add(time.Since(due))
							p.acked.Add(1)
						}
					}
				}
			}()
		}
		sw.Wait()
	}
	allIn := func() bool {
		for _, p := range ps {
			if p.delivered.Load() < p.acked.Load() {
				return false
			}
		}
		return true
	}
	drainUntil(ctx, j.DrainTimeout, allIn)
	res.EndNS = endNS(last.Load())
	res.Sent = sent.Load()
	for _, p := range ps {
		a, d := p.acked.Load(), p.delivered.Load()
		res.Acked += a
		res.Delivered += d
		if d < a {
			res.Lost += a - d
		}
	}
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}

// warmUpTimeout bounds the warm-up.
const warmUpTimeout = 30 * time.Second

// warmUp sends one message from each pair's sender to its receiver and
// reads it there, all pairs at once, within warmUpTimeout. A pair that
// fails is only counted as an error: the measured run that follows
// reports what it does.
func warmUp[P any](ctx context.Context, ps []P, parts func(P) (from, to *client.Client, conv string), es *errSink) {
	ctx, cancel := context.WithTimeout(ctx, warmUpTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ps {
		from, to, conv := parts(p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := from.Send(ctx, conv, "warm-up"); err != nil {
				es.add(fmt.Errorf("warm-up: %w", err))
				return
			}
			select {
			case <-to.Messages():
			case <-ctx.Done():
				es.add(fmt.Errorf("warm-up: no delivery to %s within %v", to.User(), warmUpTimeout))
			}
		}()
	}
	wg.Wait()
}

// endNS is the end of a window: the last delivery, else now.
func endNS(last int64) int64 {
	if last > 0 {
		return last
	}
	return time.Now().UnixNano()
}
