package push

import (
	"context"
	"slices"
	"time"

	"github.com/natter-im/natter/internal/lru"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Heads reads the newest seq of conversations (msglog.Log.Heads).
type Heads interface {
	Heads(ctx context.Context, convs []string) (map[string]uint64, error)
}

// Badge cache bounds: a user's conversation ids are kept this long (a
// conversation joined since is counted when it is the one notified about;
// one left since is counted until then), for at most this many users.
const (
	badgeListTTL   = 30 * time.Second
	badgeListUsers = 100_000
)

// UnreadBadge returns a Deps.Badge that counts what sync's unread_total
// counts: over every conversation of the user (the ids from the
// conversations service, kept 30 s per user, and the conversations being
// notified about), head - read cursor: one batched read of the heads and
// one of the read cursors.
func UnreadBadge(convs *convapi.Client, heads Heads, curs *cursors.Bucket) func(ctx context.Context, user string, notified []string) (uint64, error) {
	cache := lru.New[[]string](badgeListTTL, badgeListUsers)
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
		cache.Mu.Lock()
		ids, call := cache.LookupLocked(user, func(call *lru.Call[[]string]) {
			// Not the caller's ctx: other callers may share the load.
			lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ids, err := list(lctx, user)
			cache.Finish(user, call, ids, err, nil)
		})
		cache.Mu.Unlock()
		if call != nil {
			var err error
			if ids, err = call.Wait(ctx, "push: badge: conversations of "+user); err != nil {
				return 0, err
			}
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
