package convsvc

import (
	"context"
	"errors"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
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

// staleCreate is how long the sweeper keeps a conversation_created whose
// conversation does not exist (a create cut short between its event and
// its document, whose retry would complete it) before it drops it.
const staleCreate = 10 * time.Minute

// sweepOnce publishes and pulls the outbox entries older than
// cfg.OutboxSweep, in order per conversation; it stops at a conversation's
// first failure (the next sweep tries again). A conversation_created is
// published only once its conversation exists. The first sweep also reads
// the outboxes earlier versions left in conversation documents (a scan of
// the conversations on the embedded store: once, not every sweep).
func (s *service) sweepOnce(ctx context.Context) {
	before := time.Now().Add(-s.cfg.OutboxSweep).UnixMilli()
	fctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	boxes, err := s.st.Outboxes(fctx, before, outboxBatch)
	if err == nil && !s.docOutboxesSwept {
		var old []store.Outbox
		old, err = s.st.DocOutboxes(fctx, before, outboxBatch)
		boxes = append(old, boxes...)
		s.docOutboxesSwept = err == nil && len(old) < outboxBatch
	}
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
			ev, err := s.createdExists(pctx, box.Conv, p)
			if err == nil {
				err = s.cfg.Events.Publish(pctx, ev)
			}
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

// errNoConversation is a conversation_created whose conversation is not
// there (yet).
var errNoConversation = errors.New("conversation not created (yet)")

// createdExists returns the event of p to publish after checking, for a
// conversation_created, that its conversation exists (any other event
// passes as it is): a create writes its event before its document, so one
// cut short in between leaves an event of a conversation that was never
// created. Such an event is left for the create's retry, and dropped once
// it is staleCreate old. A direct conversation's event is made again from
// the stored document: two replicas creating one pair at once write one
// event (the first's), and the document may be the other's.
func (s *service) createdExists(ctx context.Context, conv string, p store.Pending) (natter.Event, error) {
	if p.Kind != natter.EventConversationCreated {
		return p.Event, nil
	}
	direct := !natter.IsGroupID(conv)
	c, err := s.st.GetConversation(ctx, conv, direct)
	if errors.Is(err, store.ErrNotFound) {
		if time.Since(time.UnixMilli(p.At)) > staleCreate {
			if err := s.st.Published(ctx, conv, p); err != nil {
				return p.Event, err
			}
		}
		return p.Event, errNoConversation
	}
	if err != nil || !direct {
		return p.Event, err
	}
	ev, err := events.ConversationCreated(c)
	if err != nil || ev.ID != p.ID {
		return p.Event, err // (an id made otherwise: publish the one stored)
	}
	return ev, nil
}
