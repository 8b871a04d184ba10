//go:build chaos

package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// loadFor bounds the senders of one scenario; each scenario stops them
// earlier, once its fault is over.
const loadFor = 90 * time.Second

// TestChaos starts one cluster and runs every scenario on it, one after
// the other, each on fresh users and conversations. Before each, every
// process runs again and every stream and consumer has all its replicas
// current.
func TestChaos(t *testing.T) {
	suiteStart := time.Now()
	e := startCluster(t)
	var summary []string
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, e *env) string
	}{
		{"kill-nats-follower", killFollower},
		{"kill-msgs-leader", killLeader},
		{"sigstop-msgs-leader", stopLeader},
		{"sigstop-fanout-leader", stopFanoutLeader},
		{"kill-persist-after-write", killPersistAfterWrite},
		{"kill-edge", killEdge},
		{"poison-message", poisonMessage},
		{"consumer-reset-replay", consumerReset},
		{"slow-reader", slowReader},
	} {
		ok := t.Run(sc.name, func(t *testing.T) {
			start := time.Now()
			if d := e.ready(t); d > time.Second {
				t.Logf("cluster healthy again after %v", d.Round(time.Millisecond))
			}
			line := sc.run(t, e)
			summary = append(summary, fmt.Sprintf("%-25s %5.1fs  %s", sc.name, time.Since(start).Seconds(), line))
		})
		if !ok {
			summary = append(summary, fmt.Sprintf("%-25s FAILED", sc.name))
		}
	}
	t.Logf("chaos suite: %v in all\n%s", time.Since(suiteStart).Round(time.Second), strings.Join(summary, "\n"))
}

// faultLoad starts the default workload and waits until it runs.
func faultLoad(t *testing.T, e *env, name string) *load {
	t.Helper()
	l := newLoad(t, e, name, defaultSpec)
	l.start(loadFor)
	l.waitAcked(t, 100, 60*time.Second)
	return l
}
