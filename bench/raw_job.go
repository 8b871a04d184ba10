package bench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// netDialer adapts clientSpec.netDial (source address, counted) to
// nats.CustomDialer.
type netDialer struct {
	spec clientSpec
	i    int
}

func (n netDialer) Dial(network, address string) (net.Conn, error) {
	return n.spec.netDial(context.Background(), network, address, n.i)
}

// rawConnect connects nats.go to url (a nats-server WebSocket URL) as
// connection i.
func rawConnect(url string, spec clientSpec, i int) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("natter-bench-raw"), nats.Timeout(30 * time.Second), nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1), nats.NoCallbacksAfterClientClose(), nats.SetCustomDialer(netDialer{spec, i})}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("raw connect %s: %w", url, err)
	}
	return nc, nil
}

func rawConnectAll(ctx context.Context, url string, spec clientSpec, n, base, conc int, lv *live, es *errSink) []*nats.Conn {
	out := make([]*nats.Conn, n)
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			nc, err := rawConnect(url, spec, base+i)
			if err != nil {
				es.add(err)
				return
			}
			out[i] = nc
			lv.connected.Add(1)
		}()
	}
	wg.Wait()
	return out
}

func rawCloseAll(cs []*nats.Conn) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// runRawRelayJob is relay on raw nats-server over WebSocket: publisher
// connection p<i> publishes to a subject that connection s<i> subscribes to.
// A closed loop flushes (a round trip to the server) every Window messages.
func runRawRelayJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	n := j.To - j.From
	es := &errSink{lv: lv}
	t0 := time.Now()
	cs := rawConnectAll(ctx, j.URLs[0], spec, 2*n, 2*j.From, j.DialConc, lv, es)
	defer rawCloseAll(cs)
	res := &jobResult{Lat: newHist(), DialSeconds: time.Since(t0).Seconds()}
	type pair struct {
		pub       *nats.Conn
		subj      string
		sent      atomic.Uint64
		delivered atomic.Uint64
	}
	var ps []*pair
	var last atomic.Int64
	for i := 0; i < n; i++ {
		pub, sub := cs[2*i], cs[2*i+1]
		if pub == nil || sub == nil {
			continue
		}
		p := &pair{pub: pub, subj: fmt.Sprintf("bench.%s.r%d", j.Prefix, j.From+i)}
		s, err := sub.Subscribe(p.subj, func(m *nats.Msg) {
			now := time.Now()
			if t, ok := sentAt(string(m.Data)); ok {
				res.Lat.add(now.Sub(t))
			}
			p.delivered.Add(1)
			lv.delivered.Add(1)
			last.Store(now.UnixNano())
		})
		if err != nil {
			es.add(err)
			continue
		}
		_ = s.SetPendingLimits(-1, -1)
		if err := sub.Flush(); err != nil {
			es.add(err)
			continue
		}
		ps = append(ps, p)
	}
	res.Connected = int(lv.connected.Load())
	if len(ps) == 0 {
		return nil, fmt.Errorf("bench: raw relay: no pair connected: %s", es.firstErr())
	}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(j.Duration)
	res.StartNS = start.UnixNano()
	pub := func(p *pair, due time.Time) {
		lv.sent.Add(1)
		if err := p.pub.Publish(p.subj, []byte(body(due, j.Size))); err != nil {
			es.add(err)
			return
		}
		p.sent.Add(1)
	}
	if j.Rate > 0 {
		schedule(ctx, start, end, j.Rate, 100_000, func(k int, due time.Time) { pub(ps[k%len(ps)], due) })
	} else {
		var sw sync.WaitGroup
		for _, p := range ps {
			sw.Add(1)
			go func() {
				defer sw.Done()
				for k := 1; time.Now().Before(end) && ctx.Err() == nil; k++ {
					pub(p, time.Now())
					if k%max(j.Window, 1) == 0 {
						if err := p.pub.FlushTimeout(10 * time.Second); err != nil {
							es.add(err)
						}
					}
				}
			}()
		}
		sw.Wait()
	}
	for _, p := range ps {
		_ = p.pub.FlushTimeout(10 * time.Second)
	}
	drainUntil(ctx, j.DrainTimeout, func() bool {
		for _, p := range ps {
			if p.delivered.Load() < p.sent.Load() {
				return false
			}
		}
		return true
	})
	res.EndNS = endNS(last.Load())
	for _, p := range ps {
		s, d := p.sent.Load(), p.delivered.Load()
		res.Sent += s
		res.Acked += s
		res.Delivered += d
		if d < s {
			res.Lost += s - d
		}
	}
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}
