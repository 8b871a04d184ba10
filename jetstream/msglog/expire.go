package msglog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Expire removes the entries of conv with seq < below from the hot tier
// (the retention role): one purge of the conversation's subject up to the
// stream sequence of the entry with seq below, so no other conversation's
// entries and none of conv's from below on are touched, whatever is
// appended meanwhile. The newest entry always stays (below is lowered to
// the head): it carries the head the next append continues from. Readers
// see the removed entries as trimmed ([TrimmedError]), as after
// MaxMsgsPerSubject. It returns how many entries it removed.
func (l *Log) Expire(ctx context.Context, conv string, below uint64) (uint64, error) {
	if err := subjects.ValidID(conv); err != nil {
		return 0, fmt.Errorf("msglog: expire: %w: %w", ErrInvalid, err)
	}
	h, err := l.readHead(ctx, conv)
	if err != nil {
		return 0, fmt.Errorf("msglog: expire %s: head: %w", conv, err)
	}
	below = min(below, h.seq)
	if below <= 1 {
		return 0, nil
	}
	_, oldest, err := l.oldest(ctx, conv)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("msglog: expire %s: %w", conv, err)
	}
	if oldest >= below {
		return 0, nil
	}
	stream, err := l.streamSeq(ctx, conv, h, below)
	if err != nil {
		return 0, fmt.Errorf("msglog: expire %s: %w", conv, err)
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(subjects.Msg(conv)), jetstream.WithPurgeSequence(stream)); err != nil {
		return 0, fmt.Errorf("msglog: expire %s: purge: %w", conv, err)
	}
	return below - oldest, nil
}

// streamSeq finds the stream sequence of conv's entry with seq (in the hot
// tier, at most the head h): through the back windows, else (entries
// written before windows existed) by stepping forward from the oldest
// entry, one direct get per entry.
func (l *Log) streamSeq(ctx context.Context, conv string, h head, seq uint64) (uint64, error) {
	if seq == h.seq {
		return h.stream, nil
	}
	ss, first, ok, err := l.index(ctx, conv, h, seq, seq)
	if err != nil {
		return 0, err
	}
	if ok && first <= seq && ss[0] != 0 {
		return ss[0], nil
	}
	s, cur, err := l.oldest(ctx, conv)
	if err != nil {
		return 0, err
	}
	for cur < seq {
		raw, err := l.stream.GetMsg(ctx, s+1, jetstream.WithGetMsgSubject(subjects.Msg(conv)))
		if err != nil {
			return 0, fmt.Errorf("entry after stream seq %d: %w", s, err)
		}
		a, err := anchors(raw.Header, raw.Sequence)
		if err != nil {
			return 0, err
		}
		s, cur = raw.Sequence, a.seq
	}
	if cur != seq {
		return 0, fmt.Errorf("%w: seq %d not found (stream seq %d has seq %d)", ErrCorrupt, seq, s, cur)
	}
	return s, nil
}
