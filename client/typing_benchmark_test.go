package client_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/node"
)

// BenchmarkTypingGroup1000: typing signals in a group of 1,000 members,
// sent back to back by one client through a whole in-process natter
// (typing rate limits lifted). One op is one typing frame: the edge checks
// it and publishes it once per other member (999 core NATS publishes on
// im.dlv.<user>); 20 of the members are connected and count what they
// get. Reported: deliveries/s (999 per frame), the CPU of this process
// (server and the 21 SDK clients) per frame, and the frames the 20
// receivers got per frame sent (1 = none lost).
func BenchmarkTypingGroup1000(b *testing.B) {
	cfg := edgeConfig()
	cfg.Rate, cfg.Burst = 1e6, 1e6
	cfg.TypingRate, cfg.TypingBurst = 1e6, 1e6
	dev := startNode(b, node.Config{Mode: node.ModeDev, DataDir: b.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", Edge: cfg})
	url := []string{wsURL(dev)}
	ctx := context.Background()
	members := make([]string, 999)
	prefix := uniq("m")
	for i := range members {
		members[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	typer := dial(b, url, uniq("typer"), func(c *client.Config) { c.EventBuffer = 1 << 16 })
	conv, err := typer.CreateGroup(ctx, "typing bench", members...)
	if err != nil {
		b.Fatal(err)
	}
	const receivers = 20
	var got atomic.Int64
	for i := range receivers {
		r := dial(b, url, members[i], func(c *client.Config) { c.EventBuffer = 1 << 16 })
		go func() {
			for range r.TypingEvents() {
				got.Add(1)
			}
		}()
	}
	if err := typer.SetTyping(ctx, conv.ID, true); err != nil { // loads the member cache
		b.Fatal(err)
	}
	waitFor(b, func() bool { return got.Load() == receivers })
	got.Store(0)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if err := typer.SetTyping(ctx, conv.ID, i%2 == 0); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, func() bool { return got.Load() >= int64(receivers*b.N) })
	b.StopTimer()
	elapsed := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(float64(999*b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/frame")
	b.ReportMetric(float64(got.Load())/float64(receivers*b.N), "received/sent")
}

// waitFor polls cond for up to 30s (not longer: a benchmark that loses
// signals reports it in received/sent instead of hanging).
func waitFor(tb testing.TB, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
