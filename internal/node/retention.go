package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/workers/attachgc"
	"github.com/natter-im/natter/workers/retention"
)

// attachmentDrop returns what drops the attachments of deleted or removed
// messages (attachgc.Handler.DropMessages), for the persist role.
func (n *Node) attachmentDrop(ctx context.Context, lg *slog.Logger) (func(context.Context, []string) error, error) {
	ast, err := n.attachStore(ctx)
	if err != nil {
		return nil, err
	}
	meta, err := attachments.OpenBucket(ctx, n.js)
	if err != nil {
		return nil, fmt.Errorf("node: persist: %w", err)
	}
	return attachgc.New(meta, ast, lg).DropMessages, nil
}

// startRetention starts the retention sweeper in the persist role (one
// sweep per interval; the role's replicas take turns through the store's
// lock). It has the store and the log the role has; a role of its own
// would be one more deployment for a task that is idle between sweeps.
func (n *Node) startRetention(ctx context.Context, lg *slog.Logger) error {
	mlog, err := n.msgLog(ctx)
	if err != nil {
		return err
	}
	cfg := n.cfg.Retention
	cfg.Logger = lg.With("component", "retention")
	// The removed messages' attachments go as a deleted message's do.
	drop, err := n.attachmentDrop(ctx, cfg.Logger)
	if err != nil {
		return err
	}
	cfg.DropAttachments = drop
	sw, err := retention.New(ctx, n.store, mlog, n.js, cfg)
	if err != nil {
		return &SettingError{Setting: SettingRetention, Err: fmt.Errorf("node: retention: %w", err)}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); sw.Run(sctx) }()
	n.workers = append(n.workers, stopFunc(func(context.Context) error { cancel(); <-done; return nil }))
	return nil
}
