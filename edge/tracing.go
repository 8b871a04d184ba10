package edge

import (
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/tracing"
)

// deliverTraced is deliver, inside a span (tracing.SpanDeliver) when the
// delivery carries a trace context (a sampled entry's, added by the
// fan-out): it names the user's devices with a session here.
func (h *hub) deliverTraced(hdr nats.Header, user string, frames [][]byte) {
	sp := tracing.StartDeliver(hdr, user)
	h.deliver(user, frames)
	if sp != nil {
		sp.End(h.devices(user), len(frames))
	}
}
