package client_test

import (
	"context"
	"testing"
)

// BenchmarkPingRoundTrip: one ping request and its reply on an
// authenticated WebSocket, through a whole in-process natter: the edge's
// per-frame cost (read, decode, rate limit, answer, write) without the
// message log behind it.
func BenchmarkPingRoundTrip(b *testing.B) {
	dev := startDev(b)
	a := dial(b, []string{wsURL(dev)}, uniq("alice"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := a.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
