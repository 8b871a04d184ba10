package main

import (
	"fmt"
	"time"

	"github.com/natter-im/natter/internal/gcpace"
)

// gcPacedCommands are the commands whose process serves load: the garbage
// collector is paced there (internal/gcpace). bench is one: its in-process
// natter dev, and its generator children, whose collections would add to
// the latencies they measure.
var gcPacedCommands = map[string]bool{"dev": true, "edge": true, "worker": true, "nats": true, "store": true, "bench": true}

// startGCPacer starts the collector's pacer for a serving command, set by
// NATTER_GC_MIN_INTERVAL (a duration; default 1s; 0 = off). GOGC or
// GOMEMLIMIT in the environment turn it off too.
func startGCPacer(args []string, getenv func(string) string) (stop func(), err error) {
	if len(args) == 0 || !gcPacedCommands[args[0]] {
		return func() {}, nil
	}
	cfg := gcpace.Config{}
	if v := getenv("NATTER_GC_MIN_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("NATTER_GC_MIN_INTERVAL: %q is not a duration of 0 (off) or more, e.g. 1s", v)
		}
		if d == 0 {
			return func() {}, nil
		}
		cfg.MinInterval = d
	}
	return gcpace.Start(cfg), nil
}
