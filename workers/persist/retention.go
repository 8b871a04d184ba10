package persist

import (
	"context"

	"github.com/natter-im/natter/workers/store"
)

// applyFloors applies the conversations' retention floors (workers/retention)
// to blocks about to be written: a block wholly below its conversation's
// floor is not written, the messages below it in a block that goes on past
// it are reduced as the sweeper reduces them (store.Expired). Without it, a
// block completed after the sweeper removed some of its messages would
// bring their text back into the archive from this process's memory. One
// lookup by _id per conversation of the blocks.
func (h *Handler) applyFloors(ctx context.Context, blocks []store.Block) ([]store.Block, error) {
	floors := make(map[string]uint64)
	out := make([]store.Block, 0, len(blocks))
	for _, b := range blocks {
		f, ok := floors[b.Conv]
		if !ok {
			var err error
			if f, err = h.st.RetentionFloor(ctx, b.Conv); err != nil {
				return nil, err
			}
			floors[b.Conv] = f
		}
		if f > store.BlockFirst(b.K)+store.BlockSize-1 {
			continue
		}
		for i := range b.Msgs {
			if b.Msgs[i].Seq < f {
				b.Msgs[i] = store.Expired(b.Msgs[i])
			}
		}
		out = append(out, b)
	}
	return out, nil
}
