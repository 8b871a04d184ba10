package client_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
)

// BenchmarkReadReceipts: reads that move the cursor, sent back to back by
// one client through a whole in-process natter, in a group with online
// members (an SDK client each, plus the reader's second device). One op is
// one read. At the threshold (100 members) every read is pushed to the
// online others and the reader's two devices; above it (101) only to the
// reader's devices: the difference is the cost of the receipts. With 20 of
// the 100 online, the 80 offline members' publishes find no subscriber.
// "uncoalesced" turns off the service's coalescing (--read-push-interval
// 0), so that every read is pushed; "coalesced" keeps the default (250ms:
// a reader reading back to back is pushed about 4 times a second).
// Reported: the CPU of this process (server and every SDK client) per
// read, the read pushes the clients got per second, and those per read.
func BenchmarkReadReceipts(b *testing.B) {
	for _, c := range []struct {
		name            string
		members, online int
		interval        time.Duration
	}{
		{"at-threshold-all-online-uncoalesced", protocol.MaxReceiptMembers, protocol.MaxReceiptMembers, -1},
		{"at-threshold-20-online-uncoalesced", protocol.MaxReceiptMembers, 20, -1},
		{"above-threshold-all-online-uncoalesced", protocol.MaxReceiptMembers + 1, protocol.MaxReceiptMembers + 1, -1},
		{"at-threshold-all-online-coalesced", protocol.MaxReceiptMembers, protocol.MaxReceiptMembers, 0},
	} {
		b.Run(c.name, func(b *testing.B) { benchReads(b, c.members, c.online, c.interval) })
	}
}

func benchReads(b *testing.B, size, online int, interval time.Duration) {
	cfg := edgeConfig()
	cfg.Rate, cfg.Burst = 1e6, 1e6
	dev := startNode(b, node.Config{Mode: node.ModeDev, DataDir: b.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", Edge: cfg, ReadPushInterval: interval})
	url := []string{wsURL(dev)}
	ctx := context.Background()
	reader := uniq("reader")
	members := make([]string, size-1)
	for i := range members {
		members[i] = uniq(fmt.Sprintf("m%d-", i))
	}
	r := dial(b, url, reader)
	conv, err := r.CreateGroup(ctx, "receipts bench", members...)
	if err != nil {
		b.Fatal(err)
	}
	var got, finals atomic.Int64
	var last atomic.Uint64 // the seq of the timed loop's last read
	count := func(c *client.Client) {
		go func() {
			for f := range c.ReadEvents() {
				if f.Conv == conv.ID {
					got.Add(1)
					if f.Seq == last.Load() {
						finals.Add(1)
					}
				}
			}
		}()
	}
	count(r)
	count(dial(b, url, reader)) // the reader's second device
	for _, m := range members[:online-1] {
		count(dial(b, url, m, func(c *client.Config) { c.EventBuffer = 1 << 16 }))
	}
	pushed := int64(online + 1) // the reader's two devices and the other online members
	if size > protocol.MaxReceiptMembers {
		pushed = 2 // the reader's devices only
	}
	if err := r.MarkRead(ctx, conv.ID, 1); err != nil { // warms the caches
		b.Fatal(err)
	}
	waitFor(b, func() bool { return got.Load() == pushed })
	got.Store(0)
	last.Store(uint64(b.N + 1))
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if err := r.MarkRead(ctx, conv.ID, uint64(i+2)); err != nil {
			b.Fatal(err)
		}
	}
	// Every online device gets the last read's push exactly once (at once,
	// or coalesced at the end of its interval); uncoalesced, every read's.
	waitFor(b, func() bool { return finals.Load() >= pushed })
	if interval != 0 {
		waitFor(b, func() bool { return got.Load() >= pushed*int64(b.N) })
	}
	b.StopTimer()
	if finals.Load() < pushed || (interval != 0 && got.Load() < pushed*int64(b.N)) {
		b.Fatalf("%d pushes, %d of the last read: want %d of it (and %d in all uncoalesced)", got.Load(), finals.Load(), pushed, pushed*int64(b.N))
	}
	elapsed := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/read")
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "pushes/s")
	b.ReportMetric(float64(got.Load())/float64(b.N), "pushes/read")
}
