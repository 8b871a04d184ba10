package edge

import (
	"slices"

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

// pushTraced is push, inside a span when the broadcast carries a trace
// context: it names the devices (user/device, sorted) queued on here.
func (h *hub) pushTraced(hdr nats.Header, entries [][]byte, b *broadcaster) {
	sp := tracing.StartDeliver(hdr, "")
	if sp == nil {
		h.push(entries, b)
		return
	}
	devices := make([]string, 0, len(b.targets))
	for _, s := range b.targets {
		devices = append(devices, s.user+"/"+s.device)
	}
	h.push(entries, b)
	slices.Sort(devices)
	sp.End(devices, len(entries))
}
