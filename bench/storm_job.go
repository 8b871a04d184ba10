package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// runStormJob connects clients [From, To); the first TrafficPairs pairs
// (2k sends to 2k+1) send at Rate in total while the coordinator kills (or
// stops) and restarts the edge. On mark, just before the edge goes down,
// the job notes every client's reconnect and sync counters; a client has
// resumed once it has reconnected and completed a sync since (its
// post-reconnect sync). The job reports when each client resumed and,
// after stop, how many acked messages never arrived.
func runStormJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	es := &errSink{lv: lv}
	users := make([]string, 0, j.To-j.From)
	for i := j.From; i < j.To; i++ {
		users = append(users, fmt.Sprintf("%sc%d", j.Prefix, i))
	}
	dl := &dialLog{from: j.From, first: make([]atomic.Int64, len(users))}
	spec.onDial = dl.record
	t0 := time.Now()
	cs := dialAll(ctx, spec, users, func(int) []string { return j.URLs }, j.DialConc, j.From, lv, es)
	defer closeAll(cs)
	res := &jobResult{DialSeconds: time.Since(t0).Seconds(), Connected: int(lv.connected.Load())}
	for _, c := range cs {
		if c == nil {
			return nil, fmt.Errorf("bench: storm: not every client connected: %s", es.firstErr())
		}
	}
	type pair struct {
		from, to  *client.Client
		conv      string
		acked     atomic.Uint64
		delivered atomic.Uint64
	}
	var ps []*pair
	inPair := make([]bool, len(cs))
	for k := 0; k < j.TrafficPairs && 2*k+1 < len(cs); k++ {
		p := &pair{from: cs[2*k], to: cs[2*k+1]}
		conv, err := p.from.CreateDirect(ctx, p.to.User())
		if err != nil {
			return nil, fmt.Errorf("bench: storm: create conversation: %w", err)
		}
		p.conv = conv.ID
		inPair[2*k], inPair[2*k+1] = true, true
		ps = append(ps, p)
		discard(p.from)
		go func() {
			for m := range p.to.Messages() {
				if m.Conv == p.conv {
					p.delivered.Add(1)
					lv.delivered.Add(1)
				}
			}
		}()
	}
	for i, c := range cs {
		if !inPair[i] {
			discard(c)
		}
	}
	if j.Presence > 0 {
		t0 := time.Now()
		if err := stormPresence(ctx, cs, j.Presence, j.DialConc, j.Prefix); err != nil {
			return nil, err
		}
		res.PresenceSetupSeconds = time.Since(t0).Seconds()
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	res.StartNS = time.Now().UnixNano()
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	sendCtx, cancelSends := context.WithCancel(ctx)
	defer cancelSends()
	var tw sync.WaitGroup
	if len(ps) > 0 && j.Rate > 0 {
		tw.Add(1)
		go func() {
			defer tw.Done()
			schedule(trafficCtx, time.Now(), time.Now().Add(24*time.Hour), j.Rate, 10_000, func(k int, due time.Time) {
				p := ps[k%len(ps)]
				lv.sent.Add(1)
				if _, err := p.from.Send(sendCtx, p.conv, body(due, j.Size)); err != nil {
					es.add(err)
					return
				}
				p.acked.Add(1)
			})
		}()
	}
	// Note the counters before the edge goes down, then watch every client
	// until each has reconnected and synced since, or stop.
	select {
	case <-ctl.mark:
	case <-ctl.stop:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	recs0, syncs0 := make([]uint64, len(cs)), make([]uint64, len(cs))
	var presence0 uint64
	for i, c := range cs {
		st := c.Stats()
		recs0[i], syncs0[i] = st.Reconnects, st.Syncs
		presence0 += st.Presence
	}
	dl.armed.Store(true)
	ctl.marked()
	resumed := make([]bool, len(cs))
	res.ResumeNS = make([]int64, 0, len(cs))
	nres := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
watch:
	for nres < len(cs) {
		select {
		case <-ctl.stop:
			break watch
		case <-ctx.Done():
			return nil, ctx.Err()
		case now := <-tick.C:
			for i, c := range cs {
				if resumed[i] {
					continue
				}
				if st := c.Stats(); st.Reconnects > recs0[i] && st.Syncs > syncs0[i] {
					resumed[i] = true
					nres++
					lv.resumed.Add(1)
					res.LastResumeNS = now.UnixNano()
					res.ResumeNS = append(res.ResumeNS, res.LastResumeNS)
				}
			}
		}
	}
	res.Resumed = nres
	if nres < len(cs) {
		// Say why: never reconnected, reconnected without a sync, stopped.
		var noReconnect, noSync, stopped int
		for i, c := range cs {
			if resumed[i] {
				continue
			}
			st := c.Stats()
			switch {
			case c.Err() != nil:
				stopped++
				es.add(fmt.Errorf("client %s stopped: %w", c.User(), c.Err()))
			case st.Reconnects == recs0[i]:
				noReconnect++
			default:
				noSync++
			}
		}
		es.add(fmt.Errorf("storm: %d clients not resumed: %d never reconnected, %d reconnected without a sync, %d stopped", len(cs)-nres, noReconnect, noSync, stopped))
	}
	select {
	case <-ctl.stop:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, c := range cs {
		res.PresenceEvents += c.Stats().Presence
	}
	res.PresenceEvents -= presence0
	stopTraffic()
	done := make(chan struct{})
	go func() { tw.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(j.DrainTimeout):
		cancelSends()
		<-done
	}
	drainUntil(ctx, j.DrainTimeout, func() bool {
		for _, p := range ps {
			if p.delivered.Load() < p.acked.Load() {
				return false
			}
		}
		return true
	})
	res.EndNS = time.Now().UnixNano()
	for _, p := range ps {
		a, d := p.acked.Load(), p.delivered.Load()
		res.Acked += a
		res.Received += d
		res.Sent += a
		res.Delivered += d
		if d < a {
			res.Lost += a - d
		}
	}
	res.Dials, res.FailedDials = dl.dials.Load(), dl.failed.Load()
	for i := range dl.first {
		if ns := dl.first[i].Load(); ns > 0 {
			res.FirstDialNS = append(res.FirstDialNS, ns)
		}
	}
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}

// stormPresence puts the clients in groups of n+1 (the last one may be
// smaller) and has every client watch the presence of the others of its
// group, conc at a time.
func stormPresence(ctx context.Context, cs []*client.Client, n, conc int, prefix string) error {
	var groups [][]*client.Client
	for i := 0; i+1 < len(cs); i += n + 1 {
		groups = append(groups, cs[i:min(len(cs), i+n+1)])
	}
	sem := make(chan struct{}, max(1, conc))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for k, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			users := make([]string, len(g))
			for i, c := range g {
				users[i] = c.User()
			}
			// A loaded store answers unavailable, which the SDK does not
			// retry for a group (not idempotent): try again a few times.
			var err error
			for try := 0; try < 5; try++ {
				if _, err = g[0].CreateGroup(ctx, fmt.Sprintf("%spresence%d", prefix, k), users[1:]...); !errors.Is(err, &client.Error{Code: protocol.CodeUnavailable}) {
					break
				}
				time.Sleep(time.Duration(200<<try) * time.Millisecond)
			}
			if err != nil {
				fail(fmt.Errorf("bench: storm: create presence group: %w", err))
				return
			}
			for i, c := range g {
				others := append(append([]string(nil), users[:i]...), users[i+1:]...)
				if _, err := c.SubscribePresence(ctx, others...); err != nil {
					fail(fmt.Errorf("bench: storm: %s subscribes presence: %w", c.User(), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// dialLog records the clients' TCP dials once armed (at mark): how many,
// how many failed, and when each client dialled first.
type dialLog struct {
	from          int            // connection index of the job's first client
	armed         atomic.Bool    // set at mark
	first         []atomic.Int64 // unix ns of each client's first dial since mark; 0: none
	dials, failed atomic.Uint64
}

func (d *dialLog) record(i int, err error) {
	if !d.armed.Load() {
		return
	}
	d.dials.Add(1)
	if err != nil {
		d.failed.Add(1)
	}
	if k := i - d.from; k >= 0 && k < len(d.first) {
		d.first[k].CompareAndSwap(0, time.Now().UnixNano())
	}
}
