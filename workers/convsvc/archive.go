package convsvc

import (
	"context"
	"encoding/json"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
)

// page reads one page of archived messages of conv (see [HistoryRequest]).
//
// Seqs are gap-free, so the page is a known range of seqs: [after+1,
// after+limit+1] cut at before reading forward, [before-limit-1, before-1]
// reading backward (one more than limit, for more). It reads that range
// from the archive's blocks, a few lookups by _id whatever the store holds
// (store.ArchiveRange). When a block of it is not stored (archived before
// blocks existed, or its writer missed it) it reads the blocks' seqs from
// the messages collection, one range query (a scan of the whole collection
// on the embedded store), writes the complete blocks it read, so that the
// next read of them is by _id, and answers from them. When that range has a
// gap (a message never archived), and for a backward page with no before
// (the newest archived messages, whose seqs it does not know), it reads the
// page from the messages collection as the query says.
//
// Seqs below the conversation's retention floor (workers/retention: one
// lookup by _id) were removed: the page is cut at the floor, so a page
// below it ends cleanly (empty, more false), and the reply names the floor.
func (s *service) page(ctx context.Context, conv string, before uint64, after *uint64, limit int) (any, error) {
	floor, err := s.st.RetentionFloor(ctx, conv)
	if err != nil {
		return nil, err
	}
	if floor > 1 {
		if after != nil && *after+1 < floor {
			a := floor - 1
			after = &a
		}
		if after == nil && before != 0 && before <= floor {
			return historyReply{Msgs: []json.RawMessage{}, Floor: floor}, nil
		}
	}
	res, err := s.pageRange(ctx, conv, before, after, limit, floor)
	if err != nil {
		return nil, err
	}
	res.Floor = floor
	return res, nil
}

// pageRange is page above the floor.
func (s *service) pageRange(ctx context.Context, conv string, before uint64, after *uint64, limit int, floor uint64) (historyReply, error) {
	forward := after != nil
	var from, to uint64
	if forward {
		from, to = *after+1, uint64(maxSeq)
		if before != 0 {
			to = before - 1
		}
		if *after >= maxSeq || from > to {
			return s.fitHistory(nil, limit, forward)
		}
		to = min(to, from+uint64(limit))
	} else if before != 0 {
		if before == 1 {
			return s.fitHistory(nil, limit, forward)
		}
		to = before - 1
		from = 1
		if to > uint64(limit) {
			from = to - uint64(limit)
		}
		from = max(from, floor)
	}
	if to != 0 {
		raws, ok, err := s.st.ArchiveRangeJSON(ctx, conv, from, to)
		if err != nil {
			return historyReply{}, err
		}
		if ok {
			return s.fitJSON(raws, limit, forward), nil
		}
		msgs, ok, err := s.repair(ctx, conv, from, to)
		if err != nil {
			return historyReply{}, err
		}
		if ok {
			return s.fitHistory(msgs, limit, forward)
		}
	}
	msgs, err := s.scanPage(ctx, conv, before, after, limit)
	if err != nil {
		return historyReply{}, err
	}
	for len(msgs) > 0 && msgs[0].Seq < floor {
		msgs = msgs[1:] // a removal in progress: the floor is raised first
	}
	return s.fitHistory(msgs, limit, forward)
}

// scanPage is the page read from the messages collection: the newest
// limit+1 messages with seq < before, or the oldest limit+1 with after < seq
// < before.
func (s *service) scanPage(ctx context.Context, conv string, before uint64, after *uint64, limit int) ([]natter.Message, error) {
	if after != nil {
		from, to := *after+1, uint64(maxSeq)
		if before != 0 {
			to = before - 1
		}
		return s.st.MessagesRange(ctx, conv, from, to, limit+1)
	}
	if before == 0 {
		before = maxSeq
	}
	return s.st.MessagesBefore(ctx, conv, before, limit+1)
}

// repair reads the blocks around [from, to] from the messages collection (one
// range query), writes those that are complete and returns the messages of
// [from, to]; ok is false unless it read every seq of it exactly once (then
// the caller reads the page as before). A failed write only costs the next
// read the same fallback.
func (s *service) repair(ctx context.Context, conv string, from, to uint64) ([]natter.Message, bool, error) {
	first := store.BlockFirst(store.BlockOf(from))
	last := store.BlockFirst(store.BlockOf(to)) + store.BlockSize - 1
	wide, err := s.st.MessagesRange(ctx, conv, first, last, 0)
	if err != nil {
		return nil, false, err
	}
	if blocks := store.BlocksOf(conv, wide); len(blocks) > 0 {
		if _, err := s.st.InsertBlocks(ctx, blocks); err != nil {
			s.log.Warn("archive blocks not repaired", "conv", conv, "err", err)
		} else {
			s.log.Debug("archive blocks repaired from the messages collection", "conv", conv, "blocks", len(blocks))
		}
	}
	var msgs []natter.Message
	for _, m := range wide {
		if m.Seq < from || m.Seq > to {
			continue
		}
		if m.Seq != from+uint64(len(msgs)) {
			return nil, false, nil
		}
		msgs = append(msgs, m)
	}
	return msgs, len(msgs) == int(to-from+1), nil
}

// fitJSON is fitHistory for messages already encoded (oldest first).
func (s *service) fitJSON(msgs []json.RawMessage, limit int, forward bool) historyReply {
	out := historyReply{}
	if len(msgs) > limit {
		out.More = true
		if forward {
			msgs = msgs[:limit]
		} else {
			msgs = msgs[len(msgs)-limit:]
		}
	}
	budget := int(s.nc.MaxPayload()) - 1024
	n := 0
	for i := range msgs {
		m := msgs[i]
		if !forward {
			m = msgs[len(msgs)-1-i]
		}
		if budget -= len(m) + 1; budget < 0 {
			out.More = true
			break
		}
		n++
	}
	if forward {
		out.Msgs = msgs[:n]
	} else {
		out.Msgs = msgs[len(msgs)-n:]
	}
	return out
}
