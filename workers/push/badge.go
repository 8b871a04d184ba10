package push

import (
	"context"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Heads reads the newest seq of conversations (msglog.Log.Heads).
type Heads interface {
	Heads(ctx context.Context, convs []string) (map[string]uint64, error)
}

// UnreadBadge returns a Deps.Badge that counts what sync's unread_total
// counts: over every conversation of the user, head - read cursor. Per
// page of the user's conversation ids, one batched read of the heads and
// one of the read cursors.
func UnreadBadge(convs *convapi.Client, heads Heads, curs *cursors.Bucket) func(ctx context.Context, user string) (uint64, error) {
	return func(ctx context.Context, user string) (uint64, error) {
		var total uint64
		after := ""
		for {
			page, err := convs.ListPage(ctx, convapi.ListRequest{User: user, After: after, IDs: true})
			if err != nil {
				return 0, err
			}
			ids := page.IDs
			if ids == nil {
				for _, c := range page.Convs {
					ids = append(ids, c.ID)
				}
			}
			if len(ids) > 0 {
				hs, err := heads.Heads(ctx, ids)
				if err != nil {
					return 0, err
				}
				keys := make([]string, len(ids))
				for i, c := range ids {
					keys[i] = subjects.ReadKey(user, c)
				}
				reads, err := curs.Get(ctx, keys)
				if err != nil {
					return 0, err
				}
				for _, c := range ids {
					if h, r := hs[c], reads[subjects.ReadKey(user, c)]; h > r {
						total += h - r
					}
				}
			}
			if page.Next == "" || page.Next <= after {
				return total, nil
			}
			after = page.Next
		}
	}
}
