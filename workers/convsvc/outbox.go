package convsvc

import (
	"context"
	"time"
)

// outboxBatch is how many conversations one sweep reads at most; the rest
// wait for the next sweep.
const outboxBatch = 100

// sweep republishes, every cfg.OutboxSweep until ctx ends, the outbox
// entries older than cfg.OutboxSweep: those whose request could not publish
// them (or died before it did). Every replica sweeps; an event published
// twice (by the request and a sweeper, or by two sweepers) carries one id
// and JetStream stores it once within its dedup window.
func (s *service) sweep(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.OutboxSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweepOnce(ctx)
	}
}

// sweepOnce publishes and pulls the outbox entries older than
// cfg.OutboxSweep, in order per conversation; it stops at a conversation's
// first failure (the next sweep tries again).
func (s *service) sweepOnce(ctx context.Context) {
	before := time.Now().Add(-s.cfg.OutboxSweep).UnixMilli()
	fctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	boxes, err := s.st.Outboxes(fctx, before, outboxBatch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("outbox sweep failed", "err", err)
		}
		return
	}
	for _, box := range boxes {
		for _, p := range box.Pending {
			if p.At > before {
				break // newer: its request may still be publishing it
			}
			pctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
			err := s.cfg.Events.Publish(pctx, p.Event)
			if err == nil {
				err = s.st.Published(pctx, box.Conv, p)
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("outbox event not published yet", "kind", p.Kind, "conv", box.Conv, "id", p.ID, "err", err)
				break
			}
			s.log.Info("outbox event published", "kind", p.Kind, "conv", box.Conv, "id", p.ID)
		}
	}
}
