package persist

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/store"
)

// Handler archives batches of log entries.
type Handler struct {
	st  *store.Store
	log *msglog.Log
	lg  *slog.Logger
	// arch gathers the archive's blocks (archive.go).
	arch *archiver

	// cursors, when set, gets the senders' read cursors raised (reads.go).
	cursors *cursors.Bucket
	// acts, when set, gets edit and delete entries applied (actions.go).
	acts *actions.Bucket
	// dropAttachments, when set, drops the attachments of deleted
	// messages (actions.go).
	dropAttachments func(ctx context.Context, msgIDs []string) error

	faults  Faults
	written atomic.Int64 // batches written, for Faults.AfterWrite
}

var _ runner.Handler = (*Handler)(nil)

// New returns the persist handler.
func New(st *store.Store, l *msglog.Log, logger *slog.Logger, opts ...Option) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{st: st, log: l, lg: logger, arch: newArchiver()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Handle stores msgs in one InsertMany. A message that does not decode is
// poison; a store failure retries the whole batch (the insert is idempotent).
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	h.arch.begin()
	defer h.arch.finish()
	res := make([]runner.Result, len(msgs))
	batch := make([]natter.Message, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	for i, m := range msgs {
		dm, err := msglog.Decode(m.Data(), m.Headers())
		if err != nil {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "persist: " + err.Error()}
			continue
		}
		if h.faults.Fail != nil && h.faults.Fail(dm) {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: "persist: injected fault (testing hook)"}
			continue
		}
		batch = append(batch, dm)
		idx = append(idx, i)
	}
	if len(batch) == 0 {
		return res
	}
	if _, err := h.st.InsertMessages(ctx, batch); err != nil {
		h.lg.Warn("persist batch failed", "n", len(batch), "err", err)
		for _, i := range idx {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: err.Error()}
		}
		return res
	}
	h.archive(ctx, batch)
	if err := h.raiseReads(ctx, batch); err != nil {
		// The insert is idempotent: the batch is stored again, and raised.
		h.lg.Warn("persist batch: read cursors not raised", "n", len(batch), "err", err)
		for _, i := range idx {
			res[i] = runner.Result{Outcome: runner.Retry, Reason: err.Error()}
		}
		return res
	}
	for j, m := range batch {
		if m.Thread != "" {
			if err := h.applyReply(ctx, m); err != nil {
				h.lg.Warn("persist: thread reply not recorded", "conv", m.Conv, "id", m.ID, "thread", m.Thread, "err", err)
				res[idx[j]] = runner.Result{Outcome: runner.Retry, Reason: err.Error()}
				continue
			}
		}
		if !m.IsEdit() && !m.IsDelete() {
			continue
		}
		if err := h.applyAction(ctx, m); err != nil {
			// Stored already: a retry applies it again (idempotent).
			if !errors.Is(err, errTargetMissing) {
				h.lg.Warn("persist: action not applied", "conv", m.Conv, "id", m.ID, "ref", m.Ref, "err", err)
			}
			res[idx[j]] = runner.Result{Outcome: runner.Retry, Reason: err.Error()}
		}
	}
	if h.faults.AfterWrite != nil {
		h.faults.AfterWrite(int(h.written.Add(1)), batch)
	}
	for _, i := range idx {
		if res[i].Outcome == 0 {
			res[i] = runner.Result{Outcome: runner.Ack}
		}
	}
	return res
}
