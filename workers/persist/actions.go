package persist

import (
	"context"
	"errors"
	"fmt"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/workers/store"
)

// WithActions has edit and delete entries applied to the ACTIONS bucket
// (idempotent: the edge applied a client's already, a service's is applied
// here only) and deleted messages' text removed from the archive.
func WithActions(b *actions.Bucket) Option { return func(h *Handler) { h.acts = b } }

// WithAttachmentDrop has the attachments of each deleted message dropped
// when its delete entry is applied: drop (attachgc.Handler.DropMessages)
// deletes those no other message carries and is idempotent. The persist
// role handles every delete entry anyway, so no other role reads the log
// for them (docs/design.md, "Attachments").
func WithAttachmentDrop(drop func(ctx context.Context, msgIDs []string) error) Option {
	return func(h *Handler) { h.dropAttachments = drop }
}

// errTargetMissing: an entry's ref is not stored yet; the entry is retried.
var errTargetMissing = errors.New("persist: the message the entry refers to is not stored yet")

// applyAction applies one stored edit or delete entry: to the ACTIONS
// bucket, and for a deleted message to the archive (its text and that of
// its edits scrubbed).
func (h *Handler) applyAction(ctx context.Context, m natter.Message) error {
	if h.acts == nil || !m.IsEdit() && !m.IsDelete() {
		return nil
	}
	target, err := h.st.GetMessage(ctx, m.Ref)
	if errors.Is(err, store.ErrNotFound) {
		return errTargetMissing
	}
	if err != nil {
		return err
	}
	if target.Conv != m.Conv || target.IsEdit() || target.IsDelete() {
		return nil // not an action on a message of this conversation: nothing to apply
	}
	if err := h.acts.Apply(ctx, target, m); err != nil {
		return err
	}
	if m.IsDelete() && h.dropAttachments != nil {
		// Before the scrub: a retry after a failure below drops again
		// (finding less to do).
		if err := h.dropAttachments(ctx, []string{target.ID}); err != nil {
			return fmt.Errorf("persist: attachments of %s: %w", target.ID, err)
		}
	}
	rec, ok, err := h.acts.Get(ctx, m.Conv, target.Seq)
	if err != nil || !ok || !rec.Deleted {
		return err
	}
	scrub := []store.Scrubbed{{ID: target.ID, Seq: target.Seq}}
	for _, e := range rec.Edits {
		scrub = append(scrub, store.Scrubbed{ID: e.ID, Seq: e.Seq})
	}
	found, err := h.st.ScrubMessages(ctx, m.Conv, scrub)
	if err != nil {
		return err
	}
	if !found {
		// An edit entry not stored yet (another batch): scrub again later.
		return fmt.Errorf("persist: scrub %s: %w", target.ID, errTargetMissing)
	}
	return nil
}

// scrubBlocks empties, before the blocks are written, the text of their
// deleted messages (the ACTIONS records of each block: one batched read).
func (h *Handler) scrubBlocks(ctx context.Context, blocks []store.Block) error {
	if h.acts == nil {
		return nil
	}
	for _, b := range blocks {
		first := store.BlockFirst(b.K)
		p, err := h.acts.Page(ctx, b.Conv, first, first+store.BlockSize-1, "")
		if err != nil {
			return err
		}
		for i := range b.Msgs {
			if r, ok := p.Record(b.Msgs[i].Seq); ok && r.Deleted && r.ID == b.Msgs[i].ID {
				b.Msgs[i].Body = ""
			}
		}
	}
	return nil
}

// applyReply records a stored thread reply in its root's thread (the edge
// did already, unless it failed between the append and that: idempotent).
// The root is read from the store by id; a root that is not a message of
// the conversation (the edge refused such sends) is ignored.
func (h *Handler) applyReply(ctx context.Context, m natter.Message) error {
	if h.acts == nil || m.Thread == "" || m.IsEdit() || m.IsDelete() {
		return nil
	}
	root, err := h.st.GetMessage(ctx, m.Thread)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if root.Conv != m.Conv || root.Thread != "" || root.IsEdit() || root.IsDelete() {
		return nil
	}
	return h.acts.AddReply(ctx, root, m)
}
