package bench

import (
	"context"
	"fmt"
	"time"
)

// suiteStep is one scenario of the quick suite with its sizes.
type suiteStep struct {
	name string
	set  func(c *Config)
	run  func(r *runner, ctx context.Context) ([]*Result, error)
}

// quickSuite is what "go tool task bench" runs: every scenario at the
// targets' sizes where that fits in a few minutes on 2 cores, shorter
// windows otherwise.
var quickSuite = []suiteStep{
	{"relay flat out", func(c *Config) { c.Conns, c.Rate, c.Duration = 1000, 0, 5*time.Second }, (*runner).relay},
	{"relay at 2,000 msg/s", func(c *Config) { c.Conns, c.Rate, c.Duration = 200, 2000, 5*time.Second }, (*runner).relay},
	{"fanout flat out", func(c *Config) { c.Members, c.Rate, c.Duration, c.Edges, c.Window = 1000, 0, 5*time.Second, 2, 16 }, (*runner).fanout},
	{"fanout at 200 msg/s", func(c *Config) { c.Members, c.Rate, c.Duration, c.Edges, c.Window = 1000, 200, 5*time.Second, 2, 16 }, (*runner).fanout},
	{"persist", func(c *Config) { c.Conns, c.Rate, c.Duration = 200, 0, 10*time.Second }, (*runner).persist},
	{"history", func(c *Config) { c.Conns, c.HistorySizes, c.HistoryReads = 1, []uint64{10_000, 1_000_000}, 3000 }, (*runner).history},
	// Heartbeats every 10s (the default is 25s) so that the 20s hold sees
	// two pings per connection.
	{"idle", func(c *Config) { c.Conns, c.Hold, c.PingInterval = 10_000, 20*time.Second, 10*time.Second }, (*runner).idle},
	{"storm", func(c *Config) { c.Conns, c.Rate = 10_000, 200 }, (*runner).storm},
}

// suite runs the quick suite. A step that fails is reported as a warning;
// the others still run.
func (r *runner) suite(ctx context.Context) ([]*Result, []string, error) {
	var out []*Result
	var warns []string
	orig := r.cfg
	for _, st := range quickSuite {
		if ctx.Err() != nil {
			return out, warns, ctx.Err()
		}
		c := orig
		c.Scenario = "suite"
		c.Window, c.Edges = 0, 0
		if c.Procs == 0 {
			c.Procs = 1 // a real server/generator CPU split; idle and storm need the sockets in two processes
		}
		st.set(&c)
		r.cfg = c.withDefaults()
		t0 := time.Now()
		fmt.Fprintf(r.stderr, "== suite: %s\n", st.name)
		rs, err := st.run(r, ctx)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", st.name, err))
			fmt.Fprintf(r.stderr, "== suite: %s failed: %v\n", st.name, err)
		}
		out = append(out, rs...)
		fmt.Fprintf(r.stderr, "== suite: %s done in %.0f s\n", st.name, time.Since(t0).Seconds())
	}
	r.cfg = orig
	return out, warns, nil
}
