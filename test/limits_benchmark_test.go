package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/limits"
)

// BenchmarkLimitsFrames: frames per second of one connection sending flat
// out (send, one at a time), with the deployment-wide limits on (high
// enough never to refuse: every send takes a token and is shared) and off,
// on two meshes of the same run, alternated round by round since the
// machine is noisy.
//
// Run it with: go test -run '^$' -bench BenchmarkLimitsFrames -benchtime 2000x ./test/
func BenchmarkLimitsFrames(b *testing.B) {
	on := limitsConfig(limits.Config{UserRate: 1e9, UserBurst: 1e9, UserConns: 1000, IPConnRate: 1e6, IPConns: 1e6, Share: 200 * time.Millisecond})
	off := limitsConfig(limits.Config{})
	meshes := map[string]*mesh{"off": newMesh(b, meshOpts{edge: &off}), "on": newMesh(b, meshOpts{edge: &on})}
	conns, convs := map[string]*rawConn{}, map[string]string{}
	for name, m := range meshes {
		c := mustDial(b, m.dev, "bench-"+name)
		conns[name], convs[name] = c, c.createDirect("bench-peer").ID
	}
	for round := range 3 {
		for _, name := range []string{"off", "on"} {
			b.Run(fmt.Sprintf("round%d/limits-%s", round, name), func(b *testing.B) {
				c, conv := conns[name], convs[name]
				start := time.Now()
				for i := 0; i < b.N; i++ {
					c.send(conv, fmt.Sprintf("r%d-%d-%d", round, i, start.UnixNano()), "x")
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "frames/s")
			})
		}
	}
}
