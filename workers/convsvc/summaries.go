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
// false for one listed but gone): those the instance's summary cache has
// (kept by the change notices, like the lists), and the others from the
// SUMMARIES bucket in one batched read, those it lacks from the store (one
// lookup each) written back; what was read is kept in the instance's
// cache. So a page that the instance listed before answers from memory
// (no round trip: the edge's page then waits for the service and its own
// reads of heads and cursors, two round trips instead of three), and one
// it did not (after a restart, on another replica) costs one batched read.
// Without the bucket they come from the instance's cache or the store.
func (s *service) pageSummaries(ctx context.Context, page []string) ([]natter.Conversation, []bool, error) {
	if s.cfg.Summaries == nil || s.lists == nil {
		return s.bucketSummaries(ctx, page)
	}
	convs, found, calls, mine := s.lists.beginSummaries(page)
	var load []string
	for i := range page {
		if mine[i] {
			load = append(load, page[i])
		}
	}
	if len(load) > 0 {
		// Others may wait for these loads: one caller giving up must not
		// fail them (as the cache's own loads, listcache.go).
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StoreTimeout)
		got, gfound, err := s.bucketSummaries(lctx, load)
		cancel()
		// Every load begun here ends here, kept or not.
		s.lists.applyNotices()
		j := 0
		for i := range page {
			if !mine[i] {
				continue
			}
			var (
				v    natter.Conversation
				lerr error
			)
			switch {
			case err != nil:
				lerr = err
			case !gfound[j]:
				lerr = errNoSummary // listed but gone: not kept
			default:
				v = got[j]
				convs[i], found[i] = v, true
			}
			s.lists.convs.c.Finish(page[i], calls[i], v, lerr, nil)
			j++
		}
		if err != nil {
			return nil, nil, err
		}
	}
	for i := range page {
		if found[i] || mine[i] {
			continue
		}
		c, err := calls[i].Wait(ctx, "convsvc: summary of "+page[i])
		if errors.Is(err, errNoSummary) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		convs[i], found[i] = c, true
	}
	return convs, found, nil
}

// errNoSummary ends a summary's load in the instance's cache for a
// conversation listed but gone.
var errNoSummary = errors.New("convsvc: no such conversation")

// bucketSummaries is pageSummaries without the instance's cache for the
// SUMMARIES bucket's part.
func (s *service) bucketSummaries(ctx context.Context, page []string) ([]natter.Conversation, []bool, error) {
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
