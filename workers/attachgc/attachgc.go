package attachgc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/natter-im/natter/jetstream/attachments"
)

// Handler deletes the attachments of deleted messages.
type Handler struct {
	meta *attachments.Bucket
	st   attachments.Store
	lg   *slog.Logger
}

// New returns the handler that drops the attachments of deleted messages
// ([Handler.DropMessages]: the persist role calls it for each delete entry,
// the retention sweeper for the messages it removes).
func New(meta *attachments.Bucket, st attachments.Store, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{meta: meta, st: st, lg: logger}
}

// DropMessages removes each of msgIDs from its attachments and deletes the
// attachments no other message carries (a deleted message's, the
// retention sweeper's removed messages'). Repeated, it finds less to do.
func (h *Handler) DropMessages(ctx context.Context, msgIDs []string) error {
	for _, id := range msgIDs {
		if err := h.dropMessage(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// dropMessage removes msgID from its attachments and deletes those no
// message carries any more. Redelivered, it finds less to do.
func (h *Handler) dropMessage(ctx context.Context, msgID string) error {
	ids, err := h.meta.MsgAttachments(ctx, msgID)
	if errors.Is(err, attachments.ErrNotFound) {
		return nil // no attachments, or done before
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := h.meta.DropMsg(ctx, id, msgID); errors.Is(err, attachments.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if _, err := removeUnused(ctx, h.meta, h.st, id, func(attachments.Meta) bool { return true }); err != nil {
			return err
		}
		h.lg.Debug("attachment of a deleted message handled", "id", id, "msg", msgID)
	}
	return h.meta.DeleteMsg(ctx, msgID)
}

// removeUnused deletes attachment id if no message carries it and also
// also(meta) holds. A concurrent change of it (a send) leaves it.
func removeUnused(ctx context.Context, b *attachments.Bucket, st attachments.Store, id string, also func(attachments.Meta) bool) (bool, error) {
	m, rev, err := b.Get(ctx, id)
	if errors.Is(err, attachments.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(m.Msgs) > 0 || !also(m) {
		return false, nil
	}
	if err := attachments.Remove(ctx, b, st, m, rev); err != nil {
		return false, err
	}
	return true, nil
}

// SweepConfig configures the [Sweeper]. Zero values take the documented
// defaults.
type SweepConfig struct {
	// Expiry is how long an upload no message carries is kept. Zero means
	// 24h.
	Expiry time.Duration
	// Interval between sweeps. Zero means 10m.
	Interval time.Duration
	// Now is the clock; nil means time.Now (tests move their own).
	Now func() time.Time
	// Logger; nil means discard.
	Logger *slog.Logger
}

// Sweeper deletes expired uploads.
type Sweeper struct {
	meta *attachments.Bucket
	st   attachments.Store
	cfg  SweepConfig
}

// NewSweeper returns a sweeper; Run sweeps every Interval, Sweep once.
func NewSweeper(meta *attachments.Bucket, st attachments.Store, cfg SweepConfig) *Sweeper {
	if cfg.Expiry <= 0 {
		cfg.Expiry = 24 * time.Hour
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{meta: meta, st: st, cfg: cfg}
}

// Sweep deletes every upload no message carries that is older than the
// expiry, and returns how many. It reads every attachment's metadata (one
// key listing, one get each): run it seldom. Several sweepers (one per
// attachgc replica) may run at once; each deletion is checked against the
// metadata's revision.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	ids, err := s.meta.IDs(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := s.cfg.Now().Add(-s.cfg.Expiry).UnixMilli()
	n := 0
	for _, id := range ids {
		ok, err := removeUnused(ctx, s.meta, s.st, id, func(m attachments.Meta) bool { return m.Created < cutoff })
		if err != nil {
			s.cfg.Logger.Warn("attachment sweep: not deleted", "id", id, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				s.cfg.Logger.Warn("attachment sweep failed", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Info("attachment sweep", "deleted", n)
			}
		}
	}
}
