package convsvc

import (
	"context"
	"errors"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/summaries"
	"github.com/natter-im/natter/workers/store"
)

// dropTimeout bounds the drop of a changed conversation's summary.
const dropTimeout = 2 * time.Second

// pageSummaries returns the summaries of the conversations of page (found
// false for one listed but gone). With the SUMMARIES bucket, the page's
// summaries are read from it in one batched read, and those it lacks from
// the store (one lookup each), then written back: a page costs the same
// after a restart of the instance as before. Without it they come from
// the instance's summary cache or the store.
func (s *service) pageSummaries(ctx context.Context, page []string) ([]natter.Conversation, []bool, error) {
	convs := make([]natter.Conversation, len(page))
	found := make([]bool, len(page))
	b := s.cfg.Summaries
	if b == nil {
		err := forEach(len(page), func(i int) error {
			c, err := s.summary(ctx, page[i])
			if errors.Is(err, store.ErrNotFound) {
				return nil // listed but gone: nothing to show
			}
			convs[i], found[i] = c, err == nil
			return err
		})
		return convs, found, err
	}
	// The revisions are read before the store: a change that comes after
	// drops the key, and the write-back of what the store had fails.
	ents, err := b.Get(ctx, page)
	if err != nil {
		s.log.Warn("summaries bucket not read: the page's summaries come from the store", "n", len(page), "err", err)
		ents = nil
	}
	var miss []int
	for i, id := range page {
		if e := ents[id]; e.Found {
			convs[i], found[i] = e.Conv, true
			continue
		}
		miss = append(miss, i)
	}
	if len(miss) == 0 {
		return convs, found, nil
	}
	lerr := forEach(len(miss), func(j int) error {
		i := miss[j]
		c, err := s.st.ConversationSummary(ctx, page[i], convapi.MaxInlineMembers)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		convs[i], found[i] = c, err == nil
		return err
	})
	if ents == nil {
		return convs, found, lerr // the bucket failed: no write-back either
	}
	items := make([]summaries.Item, 0, len(miss))
	for _, i := range miss {
		if found[i] {
			items = append(items, summaries.Item{Conv: convs[i], Rev: ents[page[i]].Rev})
		}
	}
	// What was read is written back even when some lookups failed (a
	// loaded store): the caller's retry reads only the rest.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := b.PutAll(wctx, items); err != nil {
		s.log.Warn("summaries not written back: the next page reads them from the store again", "n", len(items), "err", err)
	}
	if lerr != nil {
		return nil, nil, lerr
	}
	return convs, found, nil
}

// dropSummary deletes conv's summary from the SUMMARIES bucket after every
// write attempt of a change of conv (members, name), before its notice and
// reply, so a page listed after the reply reads the store. A failure
// leaves the old summary until the bucket's MaxAge: it is logged. A new
// conversation needs none (no summary of it can predate it).
func (s *service) dropSummary(ctx context.Context, conv string) {
	if s.cfg.Summaries == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := s.cfg.Summaries.Drop(ctx, conv); err != nil {
		s.log.Warn("conversation summary not dropped from the summaries bucket: conv.list may show the old one until it expires", "conv", conv, "err", err)
	}
}

// groupRevs returns the revs of the conversations of page (in its order),
// nil when none is a group: a direct conversation's rev is always 0, a
// group's comes with its summary (pageSummaries: one batched read of the
// SUMMARIES bucket).
func (s *service) groupRevs(ctx context.Context, page []string) ([]int64, error) {
	var groups []string
	for _, id := range page {
		if natter.IsGroupID(id) {
			groups = append(groups, id)
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	convs, found, err := s.pageSummaries(ctx, groups)
	if err != nil {
		return nil, err
	}
	rev := make(map[string]int64, len(groups))
	for i, c := range convs {
		if found[i] {
			rev[groups[i]] = c.Rev
		}
	}
	revs := make([]int64, len(page))
	for i, id := range page {
		revs[i] = rev[id]
	}
	return revs, nil
}
