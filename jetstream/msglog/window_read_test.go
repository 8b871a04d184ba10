package msglog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// appendOld appends the next message of conv as a writer from before back
// windows did: seq and block anchors, no Natter-Prev.
func appendOld(tb testing.TB, js jetstream.JetStream, conv, body string) {
	tb.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		tb.Fatal(err)
	}
	var seq, blk, pblk, last uint64
	raw, err := st.GetLastMsgForSubject(ctx, subjects.Msg(conv))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		tb.Fatal(err)
	default:
		last = raw.Sequence
		seq, _ = strconv.ParseUint(raw.Header.Get(msglog.HeaderSeq), 10, 64)
		blk, _ = strconv.ParseUint(raw.Header.Get(msglog.HeaderBlk), 10, 64)
		pblk, _ = strconv.ParseUint(raw.Header.Get(msglog.HeaderPBlk), 10, 64)
		if blk == 0 {
			blk = raw.Sequence
		}
	}
	seq++
	if (seq-1)%msglog.BlockSize == 0 {
		blk, pblk = 0, blk
	}
	cmid := "old" + strconv.FormatUint(seq, 10)
	m := natter.Message{ID: msglog.MessageID(conv, "u1", cmid), Conv: conv, Seq: seq, From: "u1", Cmid: cmid, Type: "text", Body: body, TS: 1}
	data, _ := json.Marshal(m)
	msg := &nats.Msg{Subject: subjects.Msg(conv), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	msg.Header.Set(msglog.HeaderSeq, strconv.FormatUint(seq, 10))
	msg.Header.Set(msglog.HeaderBlk, strconv.FormatUint(blk, 10))
	msg.Header.Set(msglog.HeaderPBlk, strconv.FormatUint(pblk, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		tb.Fatal(err)
	}
}

// fill publishes n entries of other conversations and waits for their acks.
func fill(tb testing.TB, js jetstream.JetStream, n, convs int) {
	tb.Helper()
	for k := range n {
		if _, err := js.PublishAsync(subjects.Msg(fmt.Sprint("other", k%convs)), []byte(`{"filler":true}`)); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		tb.Fatal("filler not acked")
	}
}

// TestWindowedPages reads many pages of conversations written in several
// ways, with the back windows and with the walk the log uses for entries
// without them, and checks that both give the same messages and errors
// (and the messages that were sent). Writes are interleaved with entries of
// other conversations, some pages lie close together (one batched read)
// and some far apart (one direct get per entry).
func TestWindowedPages(t *testing.T) {
	t.Parallel()
	type part struct {
		n   int  // messages
		old bool // written without back windows
	}
	for _, tc := range []struct {
		name    string
		hot     int64 // hot tier; 0 = default
		parts   []part
		between int // most entries of others between two messages
	}{
		{"windows, dense", 0, []part{{300, false}}, 3},
		{"windows, sparse", 0, []part{{300, false}}, 60},
		{"old then new", 0, []part{{100, true}, {200, false}}, 40},
		{"new, old, new", 0, []part{{80, false}, {70, true}, {150, false}}, 40},
		{"trimmed", 100, []part{{300, false}}, 40},
		{"trimmed, old then new", 100, []part{{230, true}, {70, false}}, 40},
		{"trimmed, new, old, new", 100, []part{{150, false}, {100, true}, {50, false}}, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := startServer(t, streams.Config{HotTier: tc.hot})
			w, js := newLog(t, s)
			rnd := rand.New(rand.NewPCG(uint64(len(tc.name)), 7))
			n := 0
			for _, p := range tc.parts {
				for range p.n {
					n++
					body := fmt.Sprint("body ", n)
					if p.old {
						// w's cached head goes stale: its next append loses
						// the compare-and-set and reads the head again.
						appendOld(t, js, "c", body)
					} else if _, err := w.Append(ctx, msglog.Send{Conv: "c", From: "u1", Cmid: fmt.Sprint("new", n), Body: body}); err != nil {
						t.Fatal(err)
					}
					// Mostly few, sometimes many entries of others in between.
					k := rnd.IntN(4)
					if rnd.IntN(4) == 0 {
						k = rnd.IntN(tc.between + 1)
					}
					fill(t, js, k, 50)
				}
			}
			r, _ := newLog(t, s)
			ref, _ := newLog(t, s)
			msglog.WalkOnly(ref)
			pages := 0
			for _, limit := range []int{1, 7, 50, 64, 65, 66, 100, 200} {
				for before := uint64(0); before <= uint64(n)+2; before += uint64(1 + rnd.IntN(23)) {
					got, gerr := r.Before(ctx, "c", before, limit)
					want, werr := ref.Before(ctx, "c", before, limit)
					samePage(t, fmt.Sprintf("Before(%d, %d)", before, limit), got, gerr, want, werr)
					raw, rerr := r.BeforeRaw(ctx, "c", before, limit)
					sameRaw(t, fmt.Sprintf("BeforeRaw(%d, %d)", before, limit), raw, rerr, want, werr)
					pages++
				}
				for after := uint64(0); after <= uint64(n); after += uint64(1 + rnd.IntN(23)) {
					got, gh, gerr := r.After(ctx, "c", after, limit)
					want, wh, werr := ref.After(ctx, "c", after, limit)
					if gh != wh || gh != uint64(n) {
						t.Fatalf("After(%d, %d): head %d, reference %d, want %d", after, limit, gh, wh, n)
					}
					samePage(t, fmt.Sprintf("After(%d, %d)", after, limit), got, gerr, want, werr)
					pages++
				}
			}
			st := msglog.Stats(r)
			t.Logf("%d pages: %+v", pages, st)
			if st.Gets+st.Walks == 0 {
				t.Fatalf("no page was read through the back windows: %+v", st)
			}
			if rs := msglog.Stats(ref); rs.Gets+rs.Walks+rs.Hops != 0 {
				t.Fatalf("reference used the windows: %+v", rs)
			}
		})
	}
}

// samePage checks a page against the reference read and the bodies sent.
func samePage(t *testing.T, what string, got []natter.Message, gerr error, want []natter.Message, werr error) {
	t.Helper()
	if !sameErr(gerr, werr) {
		t.Fatalf("%s: error %v, reference %v", what, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: seqs %v, reference %v", what, seqs(got), seqs(want))
	}
	for i, m := range got {
		if m.Body != fmt.Sprint("body ", m.Seq) || (i > 0 && m.Seq != got[i-1].Seq+1) {
			t.Fatalf("%s: seq %d has body %q (after seq %d)", what, m.Seq, m.Body, got[max(i-1, 0)].Seq)
		}
	}
}

// sameRaw checks a raw page against the reference read.
func sameRaw(t *testing.T, what string, p msglog.Page, err error, want []natter.Message, werr error) {
	t.Helper()
	if !sameErr(err, werr) {
		t.Fatalf("%s: error %v, reference %v", what, err, werr)
	}
	if len(p.Entries) != len(want) || (len(want) > 0 && p.First != want[0].Seq) {
		t.Fatalf("%s: %d entries from %d, reference %v", what, len(p.Entries), p.First, seqs(want))
	}
	for i, b := range p.Entries {
		if exp, _ := json.Marshal(want[i]); string(b) != string(exp) {
			t.Fatalf("%s: entry %d is %s, want %s", what, i, b, exp)
		}
	}
}

// sameErr is true for two nil errors or two TrimmedErrors alike.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ta, tb *msglog.TrimmedError
	return errors.As(a, &ta) && errors.As(b, &tb) && *ta == *tb
}

// TestNewestPageInTraffic reads pages of a conversation with 1,000 entries
// of other conversations between each two of its messages: they must be
// read by sequence through the back windows (one direct get per entry),
// without walking the interleaved entries.
func TestNewestPageInTraffic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	w, js := newLog(t, s)
	const n = 70
	for i := 1; i <= n; i++ {
		if _, err := w.Append(ctx, msglog.Send{Conv: "quiet", From: "u1", Cmid: fmt.Sprint("m", i), Body: fmt.Sprint("body ", i)}); err != nil {
			t.Fatal(err)
		}
		fill(t, js, 1000, 1000)
	}
	r, _ := newLog(t, s)
	msgs, err := r.Before(ctx, "quiet", 0, 50)
	if got, want := seqs(msgs), span(n-49, n); err != nil || !slices.Equal(got, want) {
		t.Fatalf("newest page: %v, %v; want %v", got, err, want)
	}
	checkBodies(t, msgs)
	if st := msglog.Stats(r); st != (msglog.ReadStats{Gets: 1}) {
		t.Fatalf("newest page read as %+v, want one read by direct gets and nothing else", st)
	}
	// The oldest page: one hop back over the head's window.
	msgs, _, err = r.After(ctx, "quiet", 0, 50)
	if got, want := seqs(msgs), span(1, 50); err != nil || !slices.Equal(got, want) {
		t.Fatalf("oldest page: %v, %v; want %v", got, err, want)
	}
	checkBodies(t, msgs)
	if st := msglog.Stats(r); st != (msglog.ReadStats{Gets: 2, Hops: 1}) {
		t.Fatalf("after the oldest page: %+v, want 2 reads by direct gets and 1 hop", st)
	}
}
