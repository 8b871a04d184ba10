package persist

import natter "github.com/natter-im/natter"

// Faults are fault-injection hooks for the chaos tests (test/chaos; set by
// natter's NATTER_FAULT, docs/config.md "Testing hooks"). The zero value
// injects nothing, and production code never sets them.
type Faults struct {
	// AfterWrite, when set, is called after a batch's InsertMany has
	// succeeded and before the batch is acknowledged, with the number of
	// batches written so far (from 1) and the batch. The chaos suite kills
	// the process from it, so the batch is stored but never acked.
	AfterWrite func(n int, batch []natter.Message)
	// Fail, when set, makes every message it returns true for fail as if
	// the store had refused it: the message is retried until the consumer's
	// MaxDeliver and then dead-lettered; the rest of its batch is stored.
	Fail func(m natter.Message) bool
}

// Option configures a [Handler].
type Option func(*Handler)

// WithFaults injects f (tests only).
func WithFaults(f Faults) Option { return func(h *Handler) { h.faults = f } }
