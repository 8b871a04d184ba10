package edge

import (
	"context"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
)

// Read pushes and receipts (docs/design.md, "Read receipts"). The
// conversations service publishes a read signal (delivery.SignalRead) on
// the delivery subject of the reader and, in direct conversations and
// groups of at most protocol.MaxReceiptMembers, of every other member,
// when a read moves the reader's cursor. The edge turns it into a read
// push on every socket of that user here, the reading socket included.
// receipts pages through the members' read cursors.

// readSignal queues the read push of a read signal on every session of
// user.
func (h *hub) readSignal(user string, m *nats.Msg) {
	r, err := delivery.ParseRead(m.Data)
	if err != nil {
		h.m.badDeliveries.Inc()
		return
	}
	frame := protocol.ReadPush(protocol.ReadFrame{Conv: r.Conv, User: r.User, Seq: r.Seq})
	sh := h.shard(user)
	sh.mu.Lock()
	var targets []*session
	if e := sh.users[user]; e != nil {
		targets = append(targets, e.sessions...)
	}
	sh.mu.Unlock()
	for _, s := range targets {
		if s.enqueue(frame) {
			h.m.readPushes.Inc()
		}
	}
}

// receipts answers a receipts request: one page of the members' read
// cursors.
func (e *Edge) receipts(ctx context.Context, user string, r *protocol.Request) (any, error) {
	page, err := e.convs.Receipts(ctx, convapi.ReceiptsRequest{User: user, Conv: r.Conv, After: r.AfterUser, Limit: r.LimitOrDefault()})
	if err != nil {
		return nil, err
	}
	out := protocol.ReceiptsResult{Reads: make([]protocol.Receipt, len(page.Reads)), Next: page.Next}
	for i, rc := range page.Reads {
		out.Reads[i] = protocol.Receipt{User: rc.User, Seq: rc.Seq}
	}
	return out, nil
}

// registerReceiptsREST adds GET /v1/conversations/{conv}/receipts
// (?after_user=&limit=) to the conversations group.
func (e *Edge) registerReceiptsREST(g fiber.Router) {
	g.Get("/:conv/receipts", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{Op: protocol.OpReceipts, Conv: c.Params("conv"), AfterUser: c.Query("after_user")}
		l, err := queryUint(c, "limit")
		if l != nil {
			r.Limit = int(min(*l, 1<<20))
		}
		return r, err
	}, fiber.StatusOK))
}
