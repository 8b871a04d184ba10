package edge

import (
	"context"
	"sync"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// statePage is one page of a user's conversations with what sync and
// conv.list show of each: the head, the user's read cursor and the device's
// delivered cursor.
type statePage struct {
	ids   []string
	revs  []int64               // by index of ids (nil: all 0)
	convs []natter.Conversation // the summaries, when asked for
	next  string                // the last id of the page when more follow
	heads map[string]uint64
	reads map[string]uint64              // by conversation
	acked map[string]uint64              // by conversation (a device was given)
	sets  map[string]natter.ConvSettings // the user's settings, by conversation (those set)
	ments map[string][]uint64            // the user's mention keys (mentionSeqs)
}

// statePages reads user's conversations after after in pages of size:
// only the first page when one is set, else every page. The service's list
// (ids only, unless summaries) is asked for page by page; each page's heads
// (one batched direct get per 256) and cursors (one batched direct get for
// the read and delivered cursors) are read while the next page is asked for
// (at most headReaders pages at once).
func (e *Edge) statePages(ctx context.Context, user, device, after string, size int, summaries, all bool) ([]*statePage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		pages []*statePage
		wg    sync.WaitGroup
		errs  = make(chan error, 1)
		sem   = make(chan struct{}, headReaders)
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		cancel()
	}
	var lerr error
	for {
		reply, err := e.convs.ListPage(ctx, convapi.ListRequest{User: user, After: after, Limit: size, IDs: !summaries})
		if err != nil {
			lerr = err
			break
		}
		p := &statePage{ids: reply.IDs, convs: reply.Convs, next: reply.Next}
		if len(reply.Revs) == len(reply.IDs) {
			p.revs = reply.Revs
		}
		if summaries || (reply.IDs == nil && len(reply.Convs) > 0) {
			// (An older service answers summaries, and pages of its own
			// size, to a request for ids.)
			p.ids = make([]string, len(reply.Convs))
			p.revs = make([]int64, len(reply.Convs))
			for i, c := range reply.Convs {
				p.ids[i], p.revs[i] = c.ID, c.Rev
			}
		}
		pages = append(pages, p)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.fillState(ctx, user, device, p); err != nil {
				fail(err)
			}
		})
		if !all || reply.Next == "" || ctx.Err() != nil {
			break
		}
		if reply.Next <= after {
			lerr = convapi.Unavailable("conversation list went back", nil)
			break
		}
		after = reply.Next
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err // the state's error first: it cancelled the list
	default:
	}
	if lerr != nil {
		return nil, lerr
	}
	return pages, nil
}

// headReaders is how many pages' heads and cursors statePages reads at once.
const headReaders = 4

// fillState reads the heads and cursors of p's conversations: the heads
// and the cursors at the same time.
func (e *Edge) fillState(ctx context.Context, user, device string, p *statePage) error {
	if len(p.ids) == 0 {
		return nil
	}
	var herr, serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.heads, herr = e.msgs.Heads(ctx, p.ids)
	}()
	sdone := make(chan struct{})
	go func() {
		defer close(sdone)
		p.sets, serr = e.settings.Get(ctx, user, p.ids)
	}()
	var merr error
	mdone := make(chan struct{})
	go func() {
		defer close(mdone)
		p.ments, merr = e.mentionSeqs(ctx, user, p.ids)
	}()
	keys := make([]string, 0, 2*len(p.ids))
	for _, c := range p.ids {
		keys = append(keys, subjects.ReadKey(user, c))
		if device != "" {
			keys = append(keys, subjects.DeliveredKey(user, device, c))
		}
	}
	vals, cerr := e.curs.Get(ctx, keys)
	<-done
	<-sdone
	<-mdone
	if merr != nil {
		return merr
	}
	if herr != nil {
		return herr
	}
	if serr != nil {
		return serr
	}
	if cerr != nil {
		return cerr
	}
	p.reads = make(map[string]uint64, len(p.ids))
	for _, c := range p.ids {
		if v, ok := vals[subjects.ReadKey(user, c)]; ok {
			p.reads[c] = v
		}
		if device != "" {
			if v, ok := vals[subjects.DeliveredKey(user, device, c)]; ok {
				if p.acked == nil {
					p.acked = make(map[string]uint64)
				}
				p.acked[c] = v
			}
		}
	}
	return nil
}

// unread is the number of entries after read: head - read, 0 when read is
// at or past the head.
func unread(head, read uint64) uint64 {
	if read >= head {
		return 0
	}
	return head - read
}

// pageArgs returns where a request's pages start, their size and whether
// every page is wanted (no page_size), and the unread count of the pages
// before (from the page token).
func pageArgs(r *protocol.Request) (after string, size int, all bool, before uint64) {
	if r.PageSize == 0 {
		return "", convapi.ListPageSize, true, 0
	}
	after, before, _ = protocol.ParsePage(r.Page) // Validate checked it
	return after, r.PageSize, false, before
}

// convList answers conv.list: the user's conversations (of a page, with
// page_size) with their heads and the user's read state.
func (e *Edge) convList(ctx context.Context, user string, r *protocol.Request) (any, error) {
	after, size, all, _ := pageArgs(r)
	pages, err := e.statePages(ctx, user, "", after, size, true, all)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, p := range pages {
		n += len(p.convs)
	}
	out := protocol.ConvList{Convs: make([]natter.Conversation, 0, n)}
	for _, p := range pages {
		for _, c := range p.convs {
			c.Head = p.heads[c.ID]
			c.Read = p.reads[c.ID]
			st, ok := p.sets[c.ID]
			c.Settings = settingsOf(st, ok)
			c.Unread = unread(c.Head, max(c.Read, st.Cleared))
			c.Mentions = mentionCount(p.ments, user, c.ID, max(c.Read, st.Cleared))
			out.Convs = append(out.Convs, c)
		}
		if !all && p.next != "" {
			out.Next = protocol.PageToken(p.next, nil)
		}
	}
	return out, nil
}

// sync answers every conversation of the user (of a page, with page_size)
// with its head and read state and the device's delivered cursor, and for
// those named in the cursors the messages after the cursor.
func (e *Edge) sync(ctx context.Context, user, device string, r *protocol.Request) (any, error) {
	after, size, all, total := pageArgs(r)
	pages, err := e.statePages(ctx, user, device, after, size, false, all)
	if err != nil {
		return nil, err
	}
	limit := r.LimitOrDefault()
	n := 0
	for _, p := range pages {
		n += len(p.ids)
	}
	out := protocol.SyncResult{Convs: make([]protocol.SyncConv, 0, n)}
	next := ""
	for _, p := range pages {
		for i, c := range p.ids {
			sc := protocol.SyncConv{Conv: c, Head: p.heads[c], Read: p.reads[c], Acked: p.acked[c]}
			if p.revs != nil {
				sc.Rev = p.revs[i]
			}
			st, set := p.sets[c]
			sc.Settings = settingsOf(st, set)
			if cur, ok := r.Cursors[c]; ok && max(cur, st.Cleared) < sc.Head {
				cur = max(cur, st.Cleared) // nothing the user cleared
				msgs, head, floor, err := e.after(ctx, user, c, cur, limit)
				if err != nil {
					return nil, err
				}
				sc.Msgs, sc.Head = msgs, max(head, sc.Head)
				if floor > cur+1 {
					sc.Floor = floor
				}
				last := cur
				if k := len(msgs); k > 0 {
					last = msgs[k-1].Seq
				}
				sc.More = last < sc.Head
			}
			sc.Unread = unread(sc.Head, max(sc.Read, st.Cleared))
			sc.Mentions = mentionCount(p.ments, user, c, max(sc.Read, st.Cleared))
			total += sc.Unread
			out.Convs = append(out.Convs, sc)
		}
		if !all {
			next = p.next
		}
	}
	if next != "" {
		out.Next = protocol.PageToken(next, &total)
	} else {
		out.UnreadTotal = &total
	}
	return out, nil
}
