package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
)

// TestStored: Stored finds an entry by conversation and seq, through the
// back windows and over the block anchors alike, with its headers and
// stream time; a seq the conversation does not have is ErrNoSuchSeq, one
// trimmed from the hot tier a TrimmedError with the oldest seq left.
func TestStored(t *testing.T) {
	t.Parallel()
	s := startServer(t, streams.Config{HotTier: 100})
	l, _ := newLog(t, s)
	walk, _ := newLog(t, s)
	msglog.WalkOnly(walk)
	ctx := context.Background()
	appendN(t, l, "other", 3)
	appendN(t, l, "c1", 150) // seqs 1..50 trimmed
	appendN(t, l, "other2", 2)

	for _, lg := range []struct {
		name string
		l    *msglog.Log
	}{{"windows", l}, {"blocks", walk}} {
		for _, seq := range []uint64{51, 64, 65, 100, 128, 129, 150} {
			raw, err := lg.l.Stored(ctx, "c1", seq)
			if err != nil {
				t.Fatalf("%s: Stored(c1, %d): %v", lg.name, seq, err)
			}
			m, err := msglog.Decode(raw.Data, raw.Header)
			if err != nil || m.Seq != seq || m.Body != fmt.Sprint("body ", seq) || raw.Header.Get(msglog.HeaderSeq) != fmt.Sprint(seq) {
				t.Errorf("%s: Stored(c1, %d) = seq %d body %q header %q (%v)", lg.name, seq, m.Seq, m.Body, raw.Header.Get(msglog.HeaderSeq), err)
			}
			if raw.Time.IsZero() || raw.Sequence == 0 {
				t.Errorf("%s: Stored(c1, %d): time %v stream seq %d", lg.name, seq, raw.Time, raw.Sequence)
			}
		}
		var te *msglog.TrimmedError
		if _, err := lg.l.Stored(ctx, "c1", 10); !errors.As(err, &te) || te.Oldest != 51 {
			t.Errorf("%s: Stored of a trimmed seq: %v, want a TrimmedError with oldest 51", lg.name, err)
		}
		for _, bad := range []struct {
			conv string
			seq  uint64
		}{{"c1", 0}, {"c1", 151}, {"nobody", 1}} {
			if _, err := lg.l.Stored(ctx, bad.conv, bad.seq); !errors.Is(err, msglog.ErrNoSuchSeq) {
				t.Errorf("%s: Stored(%s, %d): %v, want ErrNoSuchSeq", lg.name, bad.conv, bad.seq, err)
			}
		}
		if _, err := lg.l.Stored(ctx, "a.b", 1); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("%s: Stored of a bad conv: %v, want ErrInvalid", lg.name, err)
		}
	}
}
