package msglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Stored returns the log entry of seq in conv as the stream holds it: its
// headers ([HeaderSeq], the trace context of a sampled send), its stream
// sequence and the time the stream stored it (natter trace). It finds the
// entry through the back windows (one direct get per [Window] seqs back
// from the head), or, for entries without windows, over the block anchors
// and at most [BlockSize] gets forward: never by reading the stream.
//
// Errors: [ErrNoSuchSeq] for seq 0 or above the head, a [*TrimmedError]
// when the entry is older than the hot tier, [ErrInvalid] for a bad conv.
func (l *Log) Stored(ctx context.Context, conv string, seq uint64) (*jetstream.RawStreamMsg, error) {
	if err := subjects.ValidID(conv); err != nil {
		return nil, fmt.Errorf("msglog: stored: %w: conv: %w", ErrInvalid, err)
	}
	h, err := l.readHead(ctx, conv)
	if err != nil {
		return nil, fmt.Errorf("msglog: stored %s: head: %w", conv, err)
	}
	if seq == 0 || seq > h.seq {
		return nil, fmt.Errorf("msglog: stored %s: %w: %d (newest is %d)", conv, ErrNoSuchSeq, seq, h.seq)
	}
	var ss []uint64
	var first uint64
	ok := false
	if !l.walkOnly {
		if ss, first, ok, err = l.index(ctx, conv, h, seq, seq); err != nil {
			return nil, fmt.Errorf("msglog: stored %s: %w", conv, err)
		}
	}
	if ok {
		if first > seq {
			return nil, fmt.Errorf("msglog: stored %s: %w", conv, &TrimmedError{Conv: conv, Oldest: first})
		}
		raw, err := l.stream.GetMsg(ctx, ss[0])
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, l.storedTrimmed(ctx, conv)
		}
		if err != nil {
			return nil, fmt.Errorf("msglog: stored %s: %w", conv, err)
		}
		return raw, nil
	}
	// No windows: from the block's first entry, forward by subject; from
	// the oldest entry left when the way back is trimmed (it lies in the
	// wanted block or above it, as the walk of a page finds it).
	start, s, err := l.locate(ctx, conv, h, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		start, s, err = l.oldest(ctx, conv)
	}
	if err != nil {
		return nil, fmt.Errorf("msglog: stored %s: %w", conv, err)
	}
	if s > seq {
		return nil, fmt.Errorf("msglog: stored %s: %w", conv, &TrimmedError{Conv: conv, Oldest: s})
	}
	subj := subjects.Msg(conv)
	for next := start; ; s++ {
		raw, err := l.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return nil, fmt.Errorf("msglog: stored %s: seq %d: %w", conv, s, err)
		}
		if s == seq {
			return raw, nil
		}
		next = raw.Sequence + 1
	}
}

// storedTrimmed is the error of Stored for an entry trimmed under it.
func (l *Log) storedTrimmed(ctx context.Context, conv string) error {
	_, first, err := l.oldest(ctx, conv)
	if err != nil {
		return fmt.Errorf("msglog: stored %s: %w", conv, err)
	}
	return fmt.Errorf("msglog: stored %s: %w", conv, &TrimmedError{Conv: conv, Oldest: first})
}
