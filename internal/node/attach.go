package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/attachments/s3store"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/attachgc"
	"github.com/natter-im/natter/workers/thumbs"
)

// attachStore returns where attachment bytes live: S3 when AttachS3 names
// an endpoint, else the JetStream object store.
func (n *Node) attachStore(ctx context.Context) (attachments.Store, error) {
	if n.cfg.AttachS3.Endpoint != "" {
		st, err := s3store.New(n.cfg.AttachS3)
		if err != nil {
			return nil, &SettingError{Setting: SettingAttachS3, Err: err}
		}
		return st, nil
	}
	st, err := attachments.OpenObjectStore(ctx, n.js)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return st, nil
}

// startAttachRole starts the thumbs or the attachgc role (with its
// sweeper of expired uploads).
func (n *Node) startAttachRole(ctx context.Context, role string, lg *slog.Logger) error {
	st, err := n.attachStore(ctx)
	if err != nil {
		return err
	}
	meta, err := attachments.OpenBucket(ctx, n.js)
	if err != nil {
		return fmt.Errorf("node: %s: %w", role, err)
	}
	if role == RoleThumbs {
		return n.startRunner(ctx, n.runnerConfig(role, subjects.StreamAttach, subjects.ConsumerThumbs, 1, 2),
			thumbs.New(meta, st, thumbs.Config{Logger: lg}), "makes thumbnails of image attachments")
	}
	// The attachments of deleted messages are the persist role's (it
	// handles every delete entry); this role sweeps expired uploads.
	svc, err := n.register(role, "natter attachgc worker: deletes uploads no message carries after the expiry", func() any {
		return map[string]any{"sweeps_expired_uploads": true}
	})
	if err != nil {
		return err
	}
	n.workers = append(n.workers, stopFunc(func(context.Context) error { return svc.Stop() }))
	sw := attachgc.NewSweeper(meta, st, attachgc.SweepConfig{Expiry: n.cfg.AttachExpiry, Logger: lg})
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); sw.Run(sctx) }()
	n.workers = append(n.workers, stopFunc(func(context.Context) error { cancel(); <-done; return nil }))
	return nil
}
