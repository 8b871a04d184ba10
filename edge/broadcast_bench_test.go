package edge

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/delivery"
)

// BenchmarkBroadcastCost is the server's cost of one message into a group
// with 10 members online (all on this edge): packing the broadcast (the
// fan-out's part) and dispatching it on the edge, for a group of 200 listed
// in the message, a group of 100,000 addressed by conversation (members in
// the edge's member cache, warm), and for contrast a group of 100,000
// listed in the message (what groups of any size did before).
func BenchmarkBroadcastCost(b *testing.B) {
	for _, tc := range []struct {
		name   string
		size   int
		byConv bool
	}{{"listed_200", 200, false}, {"conv_100000", 100_000, true}, {"listed_100000", 100_000, false}} {
		b.Run(tc.name, func(b *testing.B) {
			members := make([]string, tc.size)
			for i := range members {
				members[i] = fmt.Sprintf("member%06d", i)
			}
			for i := range 10 {
				members[i*tc.size/10] = "u" + strconv.Itoa(i) // online here
			}
			r := newConvBroadcastRig(b, 10, map[string][]string{"g_1": slices.Sorted(slices.Values(members))})
			for _, cs := range r.clients {
				for _, c := range cs {
					go func() {
						for {
							if _, _, err := c.ReadMessage(); err != nil {
								return
							}
						}
					}()
				}
			}
			if _, err := r.e.hub.members.Set(context.Background(), "g_1"); err != nil {
				b.Fatal(err)
			}
			entries := [][]byte{entry("m1")}
			var bc broadcaster
			b.ResetTimer()
			for range b.N {
				var ps []delivery.Payload
				if tc.byConv {
					ps = delivery.PackConv("g_1", entries, 1<<20)
				} else {
					ps = delivery.PackMembers(members, entries, 1<<20)
				}
				for _, p := range ps {
					r.e.hub.broadcast(&nats.Msg{Data: p.Data, Header: p.Header}, &bc)
				}
			}
		})
	}
}
