package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/gctune"
)

// gcFlags set the garbage collector of a serving command (dev, edge,
// worker, nats, store): internal/gctune.
type gcFlags struct {
	percent, limit string
}

func (g *gcFlags) register(fs *cli.FlagSet) {
	fs.String(&g.percent, "gc-percent", "NATTER_GC_PERCENT", gctune.FormatPercent(gctune.DefaultPercent),
		"Go's garbage collector starts a cycle when the heap has grown this many percent beyond the last one's live heap (Go's GOGC; off = only --memory-limit); GOGC in the environment wins")
	fs.String(&g.limit, "memory-limit", "NATTER_MEMORY_LIMIT", gctune.FormatMemory(gctune.DefaultMemoryLimit),
		"soft limit of the process's Go memory, e.g. 768MiB: near it the collector runs more often than --gc-percent says (Go's GOMEMLIMIT; none = no limit); GOMEMLIMIT in the environment wins")
}

// config parses the flags' values.
func (g *gcFlags) config() (gctune.Config, error) {
	var c gctune.Config
	var err error
	if c.Percent, err = gctune.ParsePercent(g.percent); err != nil {
		return c, usageError{fmt.Errorf("--gc-percent (NATTER_GC_PERCENT): %w", err)}
	}
	if c.MemoryLimit, err = gctune.ParseMemory(g.limit); err != nil {
		return c, usageError{fmt.Errorf("--memory-limit (NATTER_MEMORY_LIMIT): %w", err)}
	}
	return c, nil
}

// apply sets the collector of this process from the flags (GOGC and
// GOMEMLIMIT in the environment win) and logs what is in force at debug
// level (log may be nil).
func (g *gcFlags) apply(log *slog.Logger) error {
	c, err := g.config()
	if err != nil {
		return err
	}
	a := gctune.Apply(c, os.Getenv)
	if log != nil {
		log.Debug("garbage collector", "gc_percent", gctune.FormatPercent(a.Percent),
			"memory_limit", gctune.FormatMemory(a.MemoryLimit), "from_go_env", a.FromGo)
	}
	return nil
}
