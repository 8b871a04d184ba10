package convsvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Read pushes (docs/design.md, "Read receipts"): a read that moves a
// user's read cursor publishes a read signal (jetstream/delivery.Read) on
// core NATS to the delivery subject im.dlv.<u> of the reader (whose other
// devices clear their badges) and, in a direct conversation or a group of
// at most convapi.MaxReceiptMembers members, of every other member. The
// edges holding those users' sockets turn it into a read push; a member
// with no socket anywhere has no subscription on its subject, so the
// server drops the signal there: only online members cost a push. A read
// that does not move the cursor publishes nothing. Reads of one user in
// one conversation are coalesced per instance: the first is pushed at
// once, those within Config.ReadPushInterval after it wait and only the
// highest is pushed at the end of the interval.

// receiptsLookups is how many read cursors one receipts page reads at once.
const receiptsLookups = 8

// receipts answers the read seqs of a page of conv's members.
func (s *service) receipts(ctx context.Context, in *convapi.ReceiptsRequest) (any, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	limit := in.Limit
	switch {
	case limit == 0:
		limit = convapi.DefaultReceiptsLimit
	case limit < 0 || limit > convapi.MaxReceiptsLimit:
		return nil, badFrame("limit", fmt.Sprintf("must be 1..%d (0 means %d)", convapi.MaxReceiptsLimit, convapi.DefaultReceiptsLimit))
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	members, err := s.loadMembers(ctx, in.Conv, in.After)
	if errors.Is(err, convapi.ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	page, next := pageAfter(members, in.After, limit)
	reads := make([]convapi.Receipt, len(page))
	err = forEachLimit(len(page), receiptsLookups, func(i int) error {
		seq, err := s.st.ReadCursor(ctx, page[i], in.Conv)
		reads[i] = convapi.Receipt{User: page[i], Seq: seq}
		return err
	})
	if err != nil {
		return nil, err
	}
	return convapi.ReceiptsReply{Reads: reads, Next: next}, nil
}

// forEachLimit runs fn(0..n-1) with at most par at once and returns the
// first error.
func forEachLimit(n, par int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for w := 0; w < min(n, par); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// pushRead publishes the read signal of user's cursor in conv having moved
// to seq (see the top of this file). Best effort: a failure is logged, the
// read has succeeded.
func (s *service) pushRead(ctx context.Context, conv, user string, seq uint64) {
	to := []string{user}
	c, err := s.summary(ctx, conv)
	switch {
	case err != nil:
		s.log.Warn("read push: conversation lookup failed, pushing to the reader only", "conv", conv, "err", err)
	case c.Kind == natter.KindDirect || (c.MemberCount <= convapi.MaxReceiptMembers && len(c.Members) == c.MemberCount):
		to = c.Members // the reader is one of them
	}
	s.reads.push(delivery.Read{Conv: conv, User: user, Seq: seq}, to)
}

// readPusher publishes read signals, coalescing those of one user in one
// conversation within an interval.
type readPusher struct {
	every   time.Duration // <= 0: no coalescing
	publish func(r delivery.Read, to []string)

	mu      sync.Mutex
	pending map[readKey]*readSlot
	stopped bool
}

type readKey struct{ conv, user string }

// readSlot is a key pushed less than an interval ago.
type readSlot struct {
	timer *time.Timer
	held  *delivery.Read // the highest read since the last push
	to    []string
}

func newReadPusher(every time.Duration, publish func(delivery.Read, []string)) *readPusher {
	return &readPusher{every: every, publish: publish, pending: map[readKey]*readSlot{}}
}

// push publishes r to the users to now, or holds it until the interval
// since the key's last push ends.
func (p *readPusher) push(r delivery.Read, to []string) {
	if p.every <= 0 {
		p.publish(r, to)
		return
	}
	k := readKey{r.Conv, r.User}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	if sl := p.pending[k]; sl != nil {
		if sl.held == nil || r.Seq > sl.held.Seq {
			sl.held, sl.to = &r, to
		}
		p.mu.Unlock()
		return
	}
	p.pending[k] = &readSlot{timer: time.AfterFunc(p.every, func() { p.flush(k) })}
	p.mu.Unlock()
	p.publish(r, to)
}

// flush ends an interval of k: the held read, if any, is pushed and starts
// another.
func (p *readPusher) flush(k readKey) {
	p.mu.Lock()
	sl := p.pending[k]
	if sl == nil || p.stopped {
		p.mu.Unlock()
		return
	}
	if sl.held == nil {
		delete(p.pending, k)
		p.mu.Unlock()
		return
	}
	r, to := *sl.held, sl.to
	sl.held, sl.to = nil, nil
	sl.timer.Reset(p.every)
	p.mu.Unlock()
	p.publish(r, to)
}

// stop drops the held reads (best effort, like every push).
func (p *readPusher) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for k, sl := range p.pending {
		sl.timer.Stop()
		delete(p.pending, k)
	}
}

// publishRead publishes r's signal on the delivery subject of each of to.
func (s *service) publishRead(r delivery.Read, to []string) {
	p, err := delivery.ReadPayload(r)
	if err != nil {
		s.log.Warn("read push not encoded", "conv", r.Conv, "err", err)
		return
	}
	for _, u := range to {
		if err := s.nc.PublishMsg(p.Msg(subjects.Deliver(u))); err != nil {
			s.log.Warn("read push not published", "conv", r.Conv, "err", err)
			return
		}
	}
}
