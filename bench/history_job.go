package bench

import (
	"context"

	"fmt"
	natter "github.com/natter-im/natter"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// historyUser is the one user of history: the member of every conversation
// and every reader.
func historyUser(prefix string) string { return prefix + "h" }

// runHistoryJob connects readers [From, To) as the history user and, after
// go, reads Reads newest pages of 50 between them, each from a random
// conversation of Convs, closed loop; with ArchiveOldest, 200-message pages
// below it instead (half history before a seq, half sync after one).
func runHistoryJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	spec, err := specOf(j, lv)
	if err != nil {
		return nil, err
	}
	if len(j.Convs) == 0 {
		return nil, fmt.Errorf("bench: history: no conversations")
	}
	n := j.To - j.From
	es := &errSink{lv: lv}
	t0 := time.Now()
	cs := dialAll(ctx, spec, repeat(historyUser(j.Prefix), n), func(i int) []string { return []string{j.URLs[(j.From+i)%len(j.URLs)]} },
		j.DialConc, j.From, lv, es)
	defer closeAll(cs)
	for _, c := range cs {
		if c == nil {
			return nil, fmt.Errorf("bench: history: dial: %s", es.firstErr())
		}
		discard(c)
	}
	res := &jobResult{Lat: newHist(), DialSeconds: time.Since(t0).Seconds(), Connected: n}
	ctl.ready()
	if err := ctl.waitStart(ctx); err != nil {
		return nil, err
	}
	res.StartNS = time.Now().UnixNano()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(j.Reads) && ctx.Err() == nil {
				conv := j.Convs[rand.IntN(len(j.Convs))]
				lv.sent.Add(1)
				t := time.Now()
				var msgs []natter.Message
				var err error
				want := 1
				switch {
				case j.ArchiveOldest == 0:
					msgs, _, err = c.History(ctx, conv, 0, 50)
				case rand.IntN(2) == 0:
					// A history page older than the hot tier.
					want = archPage
					msgs, _, err = c.History(ctx, conv, archPage+1+rand.Uint64N(j.ArchiveOldest-archPage), archPage)
				default:
					// A sync page that ends below the hot tier.
					want = archPage
					msgs, _, err = c.HistoryAfter(ctx, conv, rand.Uint64N(j.ArchiveOldest-archPage), archPage)
				}
				if err != nil {
					es.add(err)
					continue
				}
				res.Lat.add(time.Since(t))
				lv.delivered.Add(1)
				if len(msgs) < want {
					es.add(fmt.Errorf("history: page of %d messages of %s, want %d", len(msgs), conv, want))
				}
			}
		}()
	}
	wg.Wait()
	res.EndNS = time.Now().UnixNano()
	res.Sent, res.Delivered = uint64(lv.sent.Load()), uint64(lv.delivered.Load())
	res.Errors = es.n.Load()
	res.FirstErr = es.firstErr()
	return res, nil
}
