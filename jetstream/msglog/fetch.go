package msglog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// denseSpan is the most stream entries per wanted entry for which a page
// is read with one batched read from its first entry (the server walks
// every entry in between) rather than with one direct get per entry. The
// two cost about the same with 10 other entries between two wanted ones;
// with 30 the gets take 0.5 ms a page of 50 and the walk 0.7-0.9 ms
// (BenchmarkNewestPageSparse).
const denseSpan = 8

// index finds the stream sequences of seqs from..to of conv through the
// back windows, starting at the head h and hopping back (one direct get per
// [Window] seqs) while from is further back. ss[i] is the stream sequence
// of seq from+i; first is from, or the oldest seq in the hot tier when a hop
// found the way back trimmed (ss is filled from there on). ok is false when
// a window on the way ends above from (entries written before windows
// existed): the caller walks instead.
func (l *Log) index(ctx context.Context, conv string, h head, from, to uint64) (ss []uint64, first uint64, ok bool, err error) {
	ss = make([]uint64, to-from+1)
	cur := h
	for {
		if cur.seq >= from && cur.seq <= to {
			ss[cur.seq-from] = cur.stream
		}
		low, lowStream := cur.seq, cur.stream
		w := windowIter{s: cur.prev}
		for low > from {
			st, more, err := w.next()
			if err != nil {
				return nil, 0, false, fmt.Errorf("stream seq %d: %w", cur.stream, err)
			}
			if !more {
				break
			}
			if st >= lowStream {
				return nil, 0, false, fmt.Errorf("%w: stream seq %d: %s lists stream seq %d", ErrCorrupt, cur.stream, HeaderPrev, st)
			}
			low, lowStream = low-1, st
			if low <= to {
				ss[low-from] = st
			}
		}
		if low <= from {
			return ss, from, true, nil
		}
		if low == cur.seq {
			return nil, 0, false, nil // no window here
		}
		// Hop to the oldest entry the window lists and read its window.
		raw, err := l.stream.GetMsg(ctx, lowStream)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return l.indexTrimmed(ctx, conv, ss, from, to, low)
		}
		if err != nil {
			return nil, 0, false, fmt.Errorf("entry at stream seq %d: %w", lowStream, err)
		}
		if raw.Subject != subjects.Msg(conv) {
			return nil, 0, false, fmt.Errorf("%w: %s of stream seq %d points at %d, on %s", ErrCorrupt, HeaderPrev, cur.stream, lowStream, raw.Subject)
		}
		if cur, err = anchors(raw.Header, raw.Sequence); err != nil {
			return nil, 0, false, err
		}
		if cur.seq != low {
			return nil, 0, false, fmt.Errorf("%w: %s points at stream seq %d for seq %d, which has seq %d", ErrCorrupt, HeaderPrev, lowStream, low, cur.seq)
		}
		l.stats.hops.Add(1)
	}
}

// indexTrimmed finishes index when the entry of seq gone is not there:
// trimmed, and every older one with it (only trimming removes entries, the
// oldest first). It reads the oldest seq left, which must be above gone.
func (l *Log) indexTrimmed(ctx context.Context, conv string, ss []uint64, from, to, gone uint64) ([]uint64, uint64, bool, error) {
	_, first, err := l.oldest(ctx, conv)
	if err != nil {
		return nil, 0, false, err
	}
	if first <= gone {
		return nil, 0, false, fmt.Errorf("%w: seq %d is listed in a %s but not stored, and seq %d is", ErrCorrupt, gone, HeaderPrev, first)
	}
	if first > to {
		return nil, first, true, nil
	}
	return ss, first, true, nil
}

// fetch reads seqs from..to of conv, whose stream sequences are ss: with
// one batched read from the first when they lie close together, else with
// one direct get each, all in flight at once ([Log.getMany]).
func (l *Log) fetch(ctx context.Context, conv string, ss []uint64, from, to uint64) ([]entry, error) {
	n := to - from + 1
	if span := ss[n-1] - ss[0] + 1; span <= denseSpan*n {
		l.stats.walks.Add(1)
		return l.readForward(ctx, conv, ss[0], from, from, to)
	}
	l.stats.gets.Add(1)
	return l.getMany(ctx, conv, ss, from)
}

// getMany reads the entries of conv at stream sequences ss (seqs from,
// from+1, ...) with one direct get each (no_hdr), all sent before the first
// reply is read, over one reply subject. Entries missing (trimmed since ss
// was read) must be the oldest ones; the rest is returned. A newer entry
// missing while an older one is there is asked for again, twice at most:
// on a cluster, the replica that answers a get may lag the one that
// answered the head.
func (l *Log) getMany(ctx context.Context, conv string, ss []uint64, from uint64) ([]entry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	ents := make([]entry, len(ss))
	idx := make([]int, len(ss)) // of the entries to ask for
	for i := range idx {
		idx[i] = i
	}
	for round := 0; ; round++ {
		if err := l.getRound(ctx, conv, ss, from, idx, ents); err != nil {
			return nil, err
		}
		k := 0
		for k < len(ents) && ents[k].data == nil {
			k++
		}
		idx = idx[:0]
		for i := k; i < len(ents); i++ {
			if ents[i].data == nil {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return ents[k:], nil
		}
		if round == 2 {
			return nil, fmt.Errorf("%w: seq %d is not stored while seq %d is", ErrCorrupt, from+uint64(idx[0]), from+uint64(k))
		}
		t := time.NewTimer(time.Duration(1+4*round) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("direct get: %w", ctx.Err())
		}
	}
}

// getRound sends a direct get for each entry ss[i], i in idx, and puts
// the replies in ents by their seq.
func (l *Log) getRound(ctx context.Context, conv string, ss []uint64, from uint64, idx []int, ents []entry) error {
	reply, r := l.mux.Open()
	defer l.mux.Done(reply)
	req := make([]byte, 0, 48)
	for _, i := range idx {
		req = append(strconv.AppendUint(append(req[:0], `{"seq":`...), ss[i], 10), `,"no_hdr":true}`...)
		if err := l.nc.PublishRequest(l.directGet, reply, req); err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
	}
	var buf []*nats.Msg
	for got := 0; got < len(idx); {
		var err error
		if buf, err = r.Take(ctx, buf); err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		for _, m := range buf {
			got++
			if st := m.Header.Get("Status"); len(m.Data) == 0 && st != "" {
				switch st {
				case "404":
					continue // not stored: checked by the caller
				case "503":
					return fmt.Errorf("direct get: %w", nats.ErrNoResponders)
				default:
					return fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
				}
			}
			seq, data, err := checkEntry(m.Data, conv)
			if err != nil {
				return err
			}
			if seq < from || seq-from >= uint64(len(ents)) || ents[seq-from].data != nil {
				return fmt.Errorf("%w: read seq %d twice or outside %d..%d", ErrCorrupt, seq, from, from+uint64(len(ents))-1)
			}
			ents[seq-from] = entry{seq: seq, data: data}
		}
	}
	return nil
}
