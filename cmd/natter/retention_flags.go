package main

import (
	"time"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
)

// retentionFlags are the class policies of the retention sweeper (run by
// the persist role): docs/operations.md, "Retention".
type retentionFlags struct {
	directDays, directMsgs, groupDays, groupMsgs int
	interval                                     time.Duration
}

func (r *retentionFlags) register(fs *cli.FlagSet) {
	fs.Int(&r.directDays, "retention-direct-days", "NATTER_RETENTION_DIRECT_DAYS", 0, "direct conversations keep messages this many days (0 = forever)", cli.Min(0))
	fs.Int(&r.directMsgs, "retention-direct-messages", "NATTER_RETENTION_DIRECT_MESSAGES", 0, "direct conversations keep their newest this many messages (0 = all)", cli.Min(0))
	fs.Int(&r.groupDays, "retention-group-days", "NATTER_RETENTION_GROUP_DAYS", 0, "groups keep messages this many days (0 = forever)", cli.Min(0))
	fs.Int(&r.groupMsgs, "retention-group-messages", "NATTER_RETENTION_GROUP_MESSAGES", 0, "groups keep their newest this many messages (0 = all)", cli.Min(0))
	fs.Duration(&r.interval, "retention-interval", "NATTER_RETENTION_INTERVAL", time.Minute, "time between two retention sweeps (persist role)", cli.Positive[time.Duration]())
}

func (r *retentionFlags) apply(cfg *node.Config) {
	cfg.Retention.Direct.Days, cfg.Retention.Direct.Messages = r.directDays, r.directMsgs
	cfg.Retention.Group.Days, cfg.Retention.Group.Messages = r.groupDays, r.groupMsgs
	cfg.Retention.Interval = r.interval
}
