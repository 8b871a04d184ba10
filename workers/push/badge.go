package push

import (
	"context"
	"slices"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Heads reads the newest seq of conversations (msglog.Log.Heads).
type Heads interface {
	Heads(ctx context.Context, convs []string) (map[string]uint64, error)
}

// UnreadBadge returns a Deps.Badge that counts what sync's unread_total
// counts: over every conversation of the user (the ids from the
// conversations service, and the conversations being notified about),
// head - read cursor: batched reads of the heads (per 256 conversations)
// and of the read cursors (per 1,024). The list is read for every badge, not cached:
// a cached one would miss a conversation joined since.
func UnreadBadge(convs *convapi.Client, heads Heads, curs *cursors.Bucket) func(ctx context.Context, user string, notified []string) (uint64, error) {
	list := func(ctx context.Context, user string) ([]string, error) {
		var ids []string
		after := ""
		for {
			page, err := convs.ListPage(ctx, convapi.ListRequest{User: user, After: after, IDs: true})
			if err != nil {
				return nil, err
			}
			ids = append(ids, page.IDs...)
			if page.IDs == nil {
				for _, c := range page.Convs {
					ids = append(ids, c.ID)
				}
			}
			if page.Next == "" || page.Next <= after {
				return ids, nil
			}
			after = page.Next
		}
	}
	return func(ctx context.Context, user string, notified []string) (uint64, error) {
		ids, err := list(ctx, user)
		if err != nil {
			return 0, err
		}
		all := slices.Clone(ids)
		for _, c := range notified {
			if !slices.Contains(ids, c) {
				all = append(all, c)
			}
		}
		if len(all) == 0 {
			return 0, nil
		}
		hs, err := heads.Heads(ctx, all)
		if err != nil {
			return 0, err
		}
		keys := make([]string, len(all))
		for i, c := range all {
			keys[i] = subjects.ReadKey(user, c)
		}
		reads, err := curs.Get(ctx, keys)
		if err != nil {
			return 0, err
		}
		var total uint64
		for _, c := range all {
			if h, r := hs[c], reads[subjects.ReadKey(user, c)]; h > r {
				total += h - r
			}
		}
		return total, nil
	}
}
