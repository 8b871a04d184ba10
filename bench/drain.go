package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/natter-im/natter/internal/node"
)

// persistDrainTimeout bounds the relay's wait for the PERSIST backlog
// after its window.
const persistDrainTimeout = 3 * time.Minute

// persistDrainPoll is how often that wait reads the PERSIST consumer (one
// consumer info request each, counted with the drain's CPU).
const persistDrainPoll = 20 * time.Millisecond

// persistRuns reports whether the persist role stores what t accepts in
// a process whose CPU the bench measures, and why not.
func (t *target) persistRuns() (bool, string) {
	switch {
	case t.js == nil:
		return false, "the PERSIST backlog cannot be read (no NATS access: --nats-url)"
	case t.local && len(t.devCfg.Roles) > 0 && !slices.Contains(t.devCfg.Roles, node.RolePersist):
		return false, "the persist role does not run in this process (--roles): the backlog is stored elsewhere, nothing of it to drain here"
	}
	return true, ""
}

// persistDrain waits, after a relay window whose CPU figures are c, until
// the PERSIST consumer has caught up (backlog: its pending + unacked at
// the end of the window), at most persistDrainTimeout, and adds the
// server's CPU of that wait to c as c.PersistDrain: flat out, persist
// falls behind the relay, and the window's server CPU leaves out the cost
// of storing what it is behind by. The drain's CPU is counted from the
// end of the window (d.serverEnd). The generator's clients are closed by
// then: it has no drain figure.
func (r *runner) persistDrain(ctx context.Context, t *target, d *driven, c *CPU, backlog int64, label string) {
	if c == nil {
		return
	}
	pd := &PersistDrain{ServerUsPerMsg: c.ServerUsPerMsg}
	c.PersistDrain = pd
	if ok, why := t.persistRuns(); !ok {
		pd.Skipped = why
		return
	}
	if backlog < 0 {
		pd.Skipped = "the PERSIST backlog could not be read"
		return
	}
	pd.Backlog = uint64(backlog)
	var left atomic.Int64
	left.Store(backlog)
	stop := r.ticker(label+": PERSIST drain", func() string { return "backlog " + commas(left.Load()) })
	start := time.Now()
	drained := backlog == 0
	for !drained && time.Since(start) < persistDrainTimeout && ctx.Err() == nil {
		time.Sleep(persistDrainPoll)
		b, _, err := t.persistInfo(ctx)
		if err == nil {
			left.Store(int64(b))
			drained = b == 0
		}
	}
	srv := serverCPU(t)
	stop()
	pd.Seconds = round3(time.Since(start).Seconds())
	if !drained {
		pd.Seconds = -1
	}
	if srv >= 0 && d.serverEnd >= 0 && c.known() {
		pd.ServerUs = float64((srv - d.serverEnd).Microseconds())
		if c.Count > 0 {
			pd.ServerUsPerMsg = round3((c.ServerUs + pd.ServerUs) / c.Count)
		}
	}
}

// line is the report's line of pd (c: the CPU figures it belongs to).
func (pd *PersistDrain) line(c *CPU) string {
	if pd.Skipped != "" {
		return fmt.Sprintf("CPU including the PERSIST drain: nothing drained: %s; the server figure is the window's", pd.Skipped)
	}
	drain := fmt.Sprintf("drained in %.2f s", pd.Seconds)
	if pd.Seconds < 0 {
		drain = fmt.Sprintf("NOT drained within %v: the figure still leaves some out", persistDrainTimeout)
	}
	return fmt.Sprintf("CPU including the PERSIST drain: server %s us/msg (the window's %s + %s us/msg after it, storing the %s messages PERSIST was behind: %s)",
		fnum(pd.ServerUsPerMsg), fnum(c.ServerUsPerMsg), fnum(pd.ServerUs/max(c.Count, 1)), commas(int64(pd.Backlog)), drain)
}
