package convapi_test

import (
	"fmt"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
)

// BenchmarkCanSend is the edge's per-message moderation check: a group
// without mutes or announcement mode (most), one with 1,000 mutes (the
// bound: a scan), and a direct conversation.
func BenchmarkCanSend(b *testing.B) {
	now := int64(1_000_000)
	muted := make([]convapi.Mute, convapi.MaxMuted)
	for i := range muted {
		muted[i] = convapi.Mute{User: fmt.Sprintf("m%04d", i), Until: now + 1}
	}
	for _, bc := range []struct {
		name string
		kind string
		m    convapi.Moderation
	}{
		{"group-plain", natter.KindGroup, convapi.Moderation{Owner: "o", Admins: []string{"a"}}},
		{"group-1000-mutes", natter.KindGroup, convapi.IndexedModeration(convapi.Moderation{Owner: "o", Muted: muted})},
		{"direct", natter.KindDirect, convapi.Moderation{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.m.CanSend(bc.kind, "u", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
