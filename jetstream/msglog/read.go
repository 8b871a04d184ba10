package msglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// After returns the messages of conv with seq > after, oldest first, at most
// limit of them, and the head (newest seq) it read them against. When seq
// after+1 is no longer in the hot tier it returns the head and a
// [*TrimmedError] ([ErrTrimmed]) with the oldest seq that still is.
func (l *Log) After(ctx context.Context, conv string, after uint64, limit int) ([]natter.Message, uint64, error) {
	if err := checkPage(conv, limit); err != nil {
		return nil, 0, fmt.Errorf("msglog: after: %w", err)
	}
	h, err := l.readHead(ctx, conv)
	if err != nil {
		return nil, 0, fmt.Errorf("msglog: after %s: head: %w", conv, err)
	}
	if after >= h.seq {
		return nil, h.seq, nil
	}
	from, to := after+1, min(h.seq, after+uint64(limit))
	ents, err := l.page(ctx, conv, h, from, to)
	if err != nil {
		return nil, h.seq, fmt.Errorf("msglog: after %s: %w", conv, err)
	}
	msgs, err := decodeAll(ents)
	if err != nil {
		return nil, h.seq, fmt.Errorf("msglog: after %s: %w", conv, err)
	}
	return msgs, h.seq, nil
}

// Before returns the newest limit messages of conv with seq < before (before
// 0: the newest page), oldest first. When the range starts below the hot
// tier it returns the part that is in the hot tier together with a
// [*TrimmedError] ([ErrTrimmed]) so that the caller can read the rest from the
// archive.
func (l *Log) Before(ctx context.Context, conv string, before uint64, limit int) ([]natter.Message, error) {
	ents, err := l.before(ctx, conv, before, limit)
	msgs, derr := decodeAll(ents)
	if derr != nil {
		return nil, fmt.Errorf("msglog: before %s: %w", conv, derr)
	}
	return msgs, err
}

// Page is a page of log entries as stored, for callers that pass them on
// without decoding them (the edge's history reply).
type Page struct {
	// First is the seq of the first entry; 0 when the page is empty.
	First uint64
	// Entries are the JSON of the messages with seqs First, First+1, ...:
	// each a [natter.Message] as json.Marshal writes it. They belong to the
	// page's conversation and have the seqs they are listed with (checked).
	Entries [][]byte
}

// BeforeRaw is [Log.Before] returning the entries' JSON instead of decoded
// messages, with the same errors.
func (l *Log) BeforeRaw(ctx context.Context, conv string, before uint64, limit int) (Page, error) {
	ents, err := l.before(ctx, conv, before, limit)
	p := Page{Entries: make([][]byte, len(ents))}
	for i, e := range ents {
		p.Entries[i] = e.data
		if validFlat(e.data) {
			continue
		}
		// Not the shape natter writes: decode it (an error if it is not
		// JSON) and encode it again.
		m, derr := Decode(e.data, nil)
		if derr != nil {
			return Page{}, fmt.Errorf("msglog: before %s: %w", conv, derr)
		}
		p.Entries[i] = appendMessage(make([]byte, 0, messageSize(&m)), &m)
	}
	if len(ents) > 0 {
		p.First = ents[0].seq
	}
	return p, err
}

func (l *Log) before(ctx context.Context, conv string, before uint64, limit int) ([]entry, error) {
	if err := checkPage(conv, limit); err != nil {
		return nil, fmt.Errorf("msglog: before: %w", err)
	}
	h, err := l.readHead(ctx, conv)
	if err != nil {
		return nil, fmt.Errorf("msglog: before %s: head: %w", conv, err)
	}
	to := h.seq
	if before > 0 {
		to = min(to, before-1)
	}
	if to == 0 {
		return nil, nil
	}
	from := uint64(1)
	if to > uint64(limit) {
		from = to - uint64(limit) + 1
	}
	ents, err := l.page(ctx, conv, h, from, to)
	if err != nil {
		err = fmt.Errorf("msglog: before %s: %w", conv, err)
	}
	return ents, err
}

// decodeAll decodes checked entries.
func decodeAll(ents []entry) ([]natter.Message, error) {
	if len(ents) == 0 {
		return nil, nil
	}
	msgs := make([]natter.Message, len(ents))
	for i, e := range ents {
		var err error
		if msgs[i], err = Decode(e.data, nil); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

func checkPage(conv string, limit int) error {
	if err := subjects.ValidID(conv); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if limit < 1 {
		return fmt.Errorf("%w: limit %d, want at least 1", ErrInvalid, limit)
	}
	return nil
}

// page reads seqs from..to (1 <= from <= to <= h.seq) of conv. If from is
// trimmed it returns the part that is in the hot tier and a *TrimmedError.
//
// It finds the entries' stream sequences through the back windows
// ([HeaderPrev]) and reads the entries by sequence ([Log.fetch]); where
// the windows do not reach (entries written before they existed) it hops
// back over block starts and reads forward from there ([Log.walk]).
func (l *Log) page(ctx context.Context, conv string, h head, from, to uint64) ([]entry, error) {
	if l.walkOnly {
		return l.walk(ctx, conv, h, from, to)
	}
	ss, first, ok, err := l.index(ctx, conv, h, from, to)
	if err != nil {
		return nil, err
	}
	if !ok {
		return l.walk(ctx, conv, h, from, to)
	}
	if first > to {
		return nil, &TrimmedError{Conv: conv, Oldest: first}
	}
	ents, err := l.fetch(ctx, conv, ss[first-from:], first, to)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		// Trimmed since the windows were read: report the oldest seq
		// left, as the walk does.
		if _, first, err = l.oldest(ctx, conv); err != nil {
			return nil, err
		}
		if first <= to {
			// Not trimmed: the gets went to a replica behind the one
			// that answered the head. Read as without windows.
			return l.walk(ctx, conv, h, from, to)
		}
		return nil, &TrimmedError{Conv: conv, Oldest: first}
	}
	return trimmed(conv, ents, first, from, to)
}

// walk is page for entries without back windows.
func (l *Log) walk(ctx context.Context, conv string, h head, from, to uint64) ([]entry, error) {
	start, first, err := l.locate(ctx, conv, h, from)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A block start on the way back is trimmed: continue from the
		// oldest entry still there.
		start, first, err = l.oldest(ctx, conv)
	}
	if err != nil {
		return nil, err
	}
	if first > to {
		return nil, &TrimmedError{Conv: conv, Oldest: first}
	}
	l.stats.blockWalks.Add(1)
	ents, err := l.readForward(ctx, conv, start, first, from, to)
	if err != nil {
		return nil, err
	}
	return trimmed(conv, ents, first, from, to)
}

// trimmed returns ents, read for seqs from..to from seq first on, with a
// *TrimmedError when they do not start at from.
func trimmed(conv string, ents []entry, first, from, to uint64) ([]entry, error) {
	if len(ents) == 0 || ents[0].seq > from {
		oldest := to + 1
		if len(ents) > 0 {
			oldest = ents[0].seq
		} else if first > from {
			oldest = first
		}
		return ents, &TrimmedError{Conv: conv, Oldest: oldest}
	}
	return ents, nil
}

// locate hops back from h over block starts to the block holding seq want.
// It returns the stream sequence and seq of that block's first entry.
// jetstream.ErrMsgNotFound means a block start on the way is trimmed.
func (l *Log) locate(ctx context.Context, conv string, h head, want uint64) (stream, seq uint64, err error) {
	subj := subjects.Msg(conv)
	blk, cur := (h.seq-1)/BlockSize, h
	for target := (want - 1) / BlockSize; blk > target; blk-- {
		if cur.pblk == 0 {
			return 0, 0, fmt.Errorf("%w: stream seq %d (seq %d) has no previous block", ErrCorrupt, cur.stream, cur.seq)
		}
		raw, err := l.stream.GetMsg(ctx, cur.pblk)
		if err != nil {
			return 0, 0, fmt.Errorf("block start at stream seq %d: %w", cur.pblk, err)
		}
		if raw.Subject != subj {
			// Only trimming removes entries (DenyDelete), and stream
			// sequences are never reused, so this is not ours.
			return 0, 0, fmt.Errorf("%w: block anchor %d is on %s", ErrCorrupt, cur.pblk, raw.Subject)
		}
		if cur, err = anchors(raw.Header, raw.Sequence); err != nil {
			return 0, 0, err
		}
		if cur.seq != (blk-1)*BlockSize+1 {
			return 0, 0, fmt.Errorf("%w: block anchor %d has seq %d, want %d", ErrCorrupt, raw.Sequence, cur.seq, (blk-1)*BlockSize+1)
		}
	}
	return cur.blk, blk*BlockSize + 1, nil
}

// oldest returns the stream sequence and seq of the oldest entry of conv.
func (l *Log) oldest(ctx context.Context, conv string) (stream, seq uint64, err error) {
	raw, err := l.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subjects.Msg(conv)))
	if err != nil {
		return 0, 0, fmt.Errorf("oldest entry: %w", err)
	}
	h, err := anchors(raw.Header, raw.Sequence)
	if err != nil {
		return 0, 0, err
	}
	return raw.Sequence, h.seq, nil
}

// readForward reads the entries of conv from stream sequence start (holding
// seq first) on and returns those with seqs from..to, in order. It stops
// early only where entries are missing.
//
// Entries come without headers (no_hdr): the server's header rewriting made
// a 50-entry batch ~5x slower. Entries before from are counted, not checked:
// one batch is a consistent snapshot and entries of a conversation are
// contiguous (DenyDelete; trimming removes only the oldest), so after the
// first entry of a batch each one has the seq after the previous.
func (l *Log) readForward(ctx context.Context, conv string, start, first, from, to uint64) ([]entry, error) {
	subj := subjects.Msg(conv)
	ents := make([]entry, 0, to-from+1)
	want := to - first + 1 // entries to read, including those before from
	for want > 0 {
		var got, seq uint64 // seq: of the entry just handled
		done := false
		e, err := l.directBatch(ctx, directReq{Seq: start, NextFor: subj, Batch: int(want), NoHeaders: true, MaxBytes: l.batchBytes}, func(m *nats.Msg) (bool, error) {
			got++
			if got > 1 && seq+1 < from {
				seq++
				return true, nil
			}
			s, data, err := checkEntry(m.Data, conv)
			if err != nil {
				return false, err
			}
			if got > 1 && s != seq+1 {
				return false, fmt.Errorf("%w: entry of seq %d after seq %d on %s", ErrCorrupt, s, seq, subj)
			}
			seq = s
			if seq > to {
				done = true
				return false, nil
			}
			if seq >= from {
				ents = append(ents, entry{seq: seq, data: data})
			}
			done = seq == to
			return !done, nil
		})
		if err != nil {
			return nil, err
		}
		// pending is an upper bound with no_hdr: the server counts down
		// only when it rewrites headers.
		if done || got == 0 || e.pending == 0 || e.last == 0 {
			break
		}
		// Cut short (the server caps a batch by bytes): go on after it.
		want -= min(want, got)
		start = e.last + 1
	}
	return ents, nil
}
