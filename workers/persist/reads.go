package persist

import (
	"context"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
)

// WithCursors makes the handler raise each sender's read cursor in the
// CURSORS bucket to their newest message of a stored batch: a user's own
// send marks the conversation read up to it, as chat apps do. It costs one
// batched read and one publish per (sender, conversation) of a batch, none
// on the send path.
func WithCursors(b *cursors.Bucket) Option { return func(h *Handler) { h.cursors = b } }

// raiseReads raises the read cursor of every sender of batch to their
// newest message in each conversation (edit and delete entries, which come
// from services, excepted).
func (h *Handler) raiseReads(ctx context.Context, batch []natter.Message) error {
	if h.cursors == nil {
		return nil
	}
	want := make(map[string]uint64, len(batch))
	for i := range batch {
		m := &batch[i]
		if m.IsEdit() || m.IsDelete() || subjects.ValidID(m.From) != nil {
			continue
		}
		k := subjects.ReadKey(m.From, m.Conv)
		want[k] = max(want[k], m.Seq)
	}
	return h.cursors.RaiseAll(ctx, want)
}
