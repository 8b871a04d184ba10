package client_test

import (
	"context"
	"testing"
)

// BenchmarkSendReceive: one message sent by one client and delivered to
// another, end to end through a whole in-process natter (sequential sends:
// the latency of one round, not the capacity of the system).
func BenchmarkSendReceive(b *testing.B) {
	dev := startDev(b)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(b, url, alice)
	r := dial(b, url, bob)
	ctx := context.Background()
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := a.Send(ctx, conv.ID, "benchmark message body"); err != nil {
			b.Fatal(err)
		}
		<-r.Messages()
	}
}
