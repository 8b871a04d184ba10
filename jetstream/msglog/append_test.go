package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

func TestMessageID(t *testing.T) {
	t.Parallel()
	id := msglog.MessageID("c1", "u1", "m1")
	if !regexp.MustCompile(`^m_[a-z2-7]{26}$`).MatchString(id) {
		t.Fatalf("id %q: want m_ and 26 lowercase base32 characters", id)
	}
	if again := msglog.MessageID("c1", "u1", "m1"); again != id {
		t.Fatalf("not stable: %q, then %q", id, again)
	}
	seen := map[string]bool{id: true}
	for _, in := range [][3]string{{"c1", "u1", "m2"}, {"c1", "u2", "m1"}, {"c2", "u1", "m1"}, {"c1u1", "", "m1"}} {
		other := msglog.MessageID(in[0], in[1], in[2])
		if seen[other] {
			t.Fatalf("%v: id %q collides", in, other)
		}
		seen[other] = true
	}
}

func TestAppendInvalid(t *testing.T) {
	t.Parallel()
	l, _ := newLog(t, startServer(t, streams.Config{}))
	for name, s := range map[string]msglog.Send{
		"no conv":        {From: "u1", Cmid: "m1"},
		"conv with dot":  {Conv: "a.b", From: "u1", Cmid: "m1"},
		"conv with star": {Conv: "*", From: "u1", Cmid: "m1"},
		"no from":        {Conv: "c1", Cmid: "m1"},
		"no cmid":        {Conv: "c1", From: "u1"},
		"long cmid":      {Conv: "c1", From: "u1", Cmid: string(make([]byte, 65))},
	} {
		if _, err := l.Append(context.Background(), s); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}

// TestAppendSequential checks seqs, payloads, headers and block anchors of
// 300 appends interleaved with appends to another conversation.
func TestAppendSequential(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, js := newLog(t, startServer(t, streams.Config{}))
	const n = 300
	for i := 1; i <= n; i++ {
		ack, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("m", i), Body: fmt.Sprint("hello ", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ack.Seq != uint64(i) || ack.Dup || ack.Conv != "c1" || ack.ID != msglog.MessageID("c1", "u1", fmt.Sprint("m", i)) || ack.TS == 0 {
			t.Fatalf("append %d: ack %+v", i, ack)
		}
		if i%3 == 0 { // filler, so stream and conversation seqs differ
			if _, err := l.Append(ctx, msglog.Send{Conv: "other", From: "u2", Cmid: fmt.Sprint("f", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}

	c, err := js.OrderedConsumer(ctx, subjects.StreamMsgs, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.Msg("c1")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	testenv.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		b, err := c.FetchNoWait(n - len(got))
		if err != nil {
			return err
		}
		for m := range b.Messages() {
			got = append(got, m)
		}
		if len(got) < n {
			return fmt.Errorf("read %d of %d entries", len(got), n)
		}
		return nil
	})

	stream := map[uint64]uint64{} // seq -> stream seq
	for i, m := range got {
		seq := uint64(i + 1)
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		stream[seq] = md.Sequence.Stream
		msg, err := msglog.Decode(m.Data(), m.Headers())
		if err != nil {
			t.Fatal(err)
		}
		want := natter.Message{ID: msglog.MessageID("c1", "u1", fmt.Sprint("m", seq)), Conv: "c1", Seq: seq, From: "u1",
			Cmid: fmt.Sprint("m", seq), Type: msglog.DefaultType, Body: fmt.Sprint("hello ", seq), TS: msg.TS}
		if !reflect.DeepEqual(msg, want) {
			t.Fatalf("entry %d: %+v, want %+v", seq, msg, want)
		}
		h := m.Headers()
		first := (seq-1)/msglog.BlockSize*msglog.BlockSize + 1
		wantBlk, wantPBlk := stream[first], uint64(0)
		if first == seq {
			wantBlk = 0
		}
		if first > msglog.BlockSize {
			wantPBlk = stream[first-msglog.BlockSize]
		}
		for name, v := range map[string]string{
			jetstream.MsgIDHeader: want.ID,
			msglog.HeaderSeq:      strconv.FormatUint(seq, 10),
			msglog.HeaderBlk:      strconv.FormatUint(wantBlk, 10),
			msglog.HeaderPBlk:     strconv.FormatUint(wantPBlk, 10),
		} {
			if h.Get(name) != v {
				t.Fatalf("entry %d (stream seq %d): %s = %q, want %q", seq, md.Sequence.Stream, name, h.Get(name), v)
			}
		}
	}
	if head, err := l.Head(ctx, "c1"); err != nil || head != n {
		t.Fatalf("head %d, %v; want %d", head, err, n)
	}
}

// TestAppendConcurrent runs 50 senders x 20 sends on one conversation
// through two Logs on two connections, as two edges would: with the retry
// check, and as first attempts without it (the compare-and-set conflicts
// between the two Logs then take the retry path that checks).
func TestAppendConcurrent(t *testing.T) {
	t.Parallel()
	for _, first := range []bool{false, true} {
		t.Run(fmt.Sprint("first=", first), func(t *testing.T) {
			t.Parallel()
			testAppendConcurrent(t, first)
		})
	}
}

func testAppendConcurrent(t *testing.T, first bool) {
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	l1, js := newLog(t, s)
	l2, _ := newLog(t, s)
	const senders, sends = 50, 20
	acks := make([][]natter.Ack, senders)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for g := range senders {
		l := l1
		if g%2 == 1 {
			l = l2
		}
		wg.Go(func() {
			for i := range sends {
				ack, err := l.Append(ctx, msglog.Send{Conv: "hot", From: fmt.Sprint("u", g), Cmid: fmt.Sprint("m", i), Body: fmt.Sprint(g, "/", i), FirstAttempt: first})
				if err != nil {
					errs <- fmt.Errorf("sender %d send %d: %w", g, i, err)
					return
				}
				acks[g] = append(acks[g], ack)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	bySeq := map[uint64]natter.Ack{}
	for g, as := range acks {
		for i, a := range as {
			if a.Dup {
				t.Fatalf("sender %d send %d: Dup ack %+v", g, i, a)
			}
			if prev, ok := bySeq[a.Seq]; ok {
				t.Fatalf("seq %d handed out twice: %+v and %+v", a.Seq, prev, a)
			}
			bySeq[a.Seq] = a
			if i > 0 && a.Seq <= as[i-1].Seq {
				t.Fatalf("sender %d: send %d got seq %d after seq %d", g, i, a.Seq, as[i-1].Seq)
			}
		}
	}
	for seq := uint64(1); seq <= senders*sends; seq++ {
		if _, ok := bySeq[seq]; !ok {
			t.Fatalf("no ack has seq %d", seq)
		}
	}

	msgs, head, err := l2.After(ctx, "hot", 0, senders*sends+10)
	if err != nil || head != senders*sends || len(msgs) != senders*sends {
		t.Fatalf("After: %d messages, head %d, %v", len(msgs), head, err)
	}
	for i, m := range msgs {
		if a := bySeq[uint64(i+1)]; m.Seq != uint64(i+1) || m.ID != a.ID || m.TS != a.TS {
			t.Fatalf("log entry %d: %+v, ack %+v", i+1, m, a)
		}
	}
	if n := entries(t, js, "hot"); n != senders*sends {
		t.Fatalf("%d log entries, want %d", n, senders*sends)
	}
	if n := msglog.LockEntries(l1) + msglog.LockEntries(l2); n != 0 {
		t.Fatalf("%d lock entries left", n)
	}
}

func TestAppendIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	l1, js := newLog(t, s)
	l2, _ := newLog(t, s)
	send := func(l *msglog.Log, cmid string) natter.Ack {
		t.Helper()
		ack, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: cmid, Body: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	same := func(what string, got, want natter.Ack) {
		t.Helper()
		want.Dup = true
		if got != want {
			t.Fatalf("%s: ack %+v, want %+v", what, got, want)
		}
	}

	first := send(l1, "a")
	same("retry, same log", send(l1, "a"), first)
	same("retry, other log", send(l2, "a"), first)

	// A stale head: l2 appended b, l1 then appended c, so l2's cached head
	// is behind. The retry of b fails the compare-and-set first, re-reads
	// the head and then finds the original.
	b := send(l2, "b")
	send(l1, "c")
	same("retry with stale head", send(l2, "b"), b)

	if n := entries(t, js, "c1"); n != 3 {
		t.Fatalf("%d log entries, want 3", n)
	}
}

// TestAppendIdempotentAfterDedupWindow retries after JetStream has forgotten
// the message id, on another Log: the check reads the hot tier above the
// PERSIST consumer's ack floor, where a message the persist worker has not
// archived yet is. The control shows that the floor bounds the read: once
// the consumer has acked the entry (the archive holds it, and this Log has
// no archive to ask) the retry is no longer recognised.
func TestAppendIdempotentAfterDedupWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{DedupWindow: 100 * time.Millisecond}) // the server's minimum
	l, js := newLog(t, s)
	nc2, js2 := connect(t, s)
	l2, err := msglog.New(ctx, nc2, js2, msglog.Config{FloorTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	send := msglog.Send{Conv: "c1", From: "u1", Cmid: "a"}
	first, err := l.Append(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // more than one batch of the read to walk over
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u2", Cmid: fmt.Sprint("f", i)}); err != nil {
			t.Fatal(err)
		}
	}
	msglog.SetBatchBytes(l2, 4096) // reads the server cuts short
	waitDedupWindow(t, js)

	for _, lg := range []*msglog.Log{l, l2} {
		again, err := lg.Append(ctx, send)
		if err != nil {
			t.Fatal(err)
		}
		if want := (natter.Ack{ID: first.ID, Conv: "c1", Seq: first.Seq, TS: first.TS, Dup: true}); again != want {
			t.Fatalf("retry: ack %+v, want %+v", again, want)
		}
	}
	if n := entries(t, js, "c1"); n != 301 {
		t.Fatalf("%d log entries, want 301", n)
	}

	// Control: the PERSIST consumer acks everything (as if archived).
	ackPersist(t, js, 301)
	waitDedupWindow(t, js)
	if dup, err := l2.Append(ctx, send); err != nil || dup.Dup || dup.Seq != 302 {
		t.Fatalf("retry below the ack floor without an archive: %+v, %v; want a new entry", dup, err)
	}
}

// ackPersist acks the first n entries of MSGS on the PERSIST consumer, as
// the persist worker does once they are archived.
func ackPersist(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	ctx := context.Background()
	c, err := js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		tb.Fatal(err)
	}
	for acked := 0; acked < n; {
		b, err := c.Fetch(n-acked, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				tb.Fatal(err)
			}
			got++
		}
		if got == 0 {
			tb.Fatalf("PERSIST: %d of %d entries acked, no more to fetch: %v", acked, n, b.Error())
		}
		acked += got
	}
}

// waitDedupWindow publishes a probe with a message id of its own and
// repeats it until MSGS no longer reports it as a duplicate: by then every
// message id stored before the probe is forgotten too.
func waitDedupWindow(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	probe := fmt.Sprint("probe-", time.Now().UnixNano())
	if _, err := js.Publish(context.Background(), subjects.Msg("probe"), nil, jetstream.WithMsgID(probe)); err != nil {
		tb.Fatal(err)
	}
	testenv.CheckFor(tb, 10*time.Second, 20*time.Millisecond, func() error {
		pa, err := js.Publish(context.Background(), subjects.Msg("probe"), nil, jetstream.WithMsgID(probe))
		if err != nil {
			return err
		}
		if pa.Duplicate {
			return errors.New("dedup window not passed yet")
		}
		return nil
	})
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good := []byte(`{"id":"m_x","conv":"c1","seq":3,"from":"u1","cmid":"a","body":"hi","ts":1}`)
	hdr := nats.Header{msglog.HeaderSeq: []string{"3"}}
	if m, err := msglog.Decode(good, hdr); err != nil || m.Seq != 3 || m.Body != "hi" {
		t.Fatalf("Decode: %+v, %v", m, err)
	}
	if _, err := msglog.Decode(good, nil); err != nil {
		t.Fatalf("Decode without headers: %v", err)
	}
	// Not the log's own layout (spaces, another order): decoded as JSON.
	spaced := []byte(`{ "seq": 3, "conv": "c1", "id": "m_x", "from": "u1", "cmid": "a", "body": "hi", "ts": 1 }`)
	if m, err := msglog.Decode(spaced, hdr); err != nil || m.Seq != 3 || m.Body != "hi" || m.Conv != "c1" {
		t.Fatalf("Decode of other JSON: %+v, %v", m, err)
	}
	for name, in := range map[string]struct {
		data []byte
		hdr  nats.Header
	}{
		"not json":             {[]byte("{"), nil},
		"no seq":               {[]byte(`{"id":"m_x","conv":"c1"}`), nil},
		"header mismatch":      {good, nats.Header{msglog.HeaderSeq: []string{"4"}}},
		"header not canonical": {good, nats.Header{msglog.HeaderSeq: []string{"03"}}},
	} {
		if _, err := msglog.Decode(in.data, in.hdr); !errors.Is(err, msglog.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestRetryCheckStopsAtTheDedupWindow: with no persist worker the ack floor
// stays 0, yet the retry check of a send that is not a first attempt reads
// only up to the first entry inside the dedup window (2 minutes here, less
// its margin): one entry per append, not the whole conversation.
func TestRetryCheckStopsAtTheDedupWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, js := newLog(t, startServer(t, streams.Config{}))
	const n = 300
	for i := range n {
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := msglog.Scanned(l); got > 2*n {
		t.Fatalf("the retry check read %d entries for %d appends, want at most %d", got, n, 2*n)
	}
	if e := entries(t, js, "c1"); e != n {
		t.Fatalf("%d entries, want %d", e, n)
	}
}

// TestRetryCheckReadsPastOldEntries: a retry after the dedup window (8 s
// here: entries older than 3 s are read) finds its original behind older
// entries, and stops neither at them nor before its original.
func TestRetryCheckReadsPastOldEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{DedupWindow: 8 * time.Second})
	l, js := newLog(t, s)
	l2, _ := newLog(t, s)
	for i := range 20 {
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u2", Cmid: fmt.Sprint("old", i)}); err != nil {
			t.Fatal(err)
		}
	}
	send := msglog.Send{Conv: "c1", From: "u1", Cmid: "a", Body: "original"}
	first, err := l.Append(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	waitDedupWindow(t, js)
	for i := range 5 { // inside the window: where the read may stop
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u2", Cmid: fmt.Sprint("new", i)}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := l2.Append(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if want := (natter.Ack{ID: first.ID, Conv: "c1", Seq: first.Seq, TS: first.TS, Dup: true}); again != want {
		t.Fatalf("retry after the window: ack %+v, want %+v", again, want)
	}
	if e := entries(t, js, "c1"); e != 26 {
		t.Fatalf("%d entries, want 26", e)
	}
}

// TestAppendReusesNothingVisible: appends reuse their request's header map
// and payload buffer, and no header or byte of one reaches the next: a
// conversation's first entry has no back window although the append before
// it (another conversation's third) had one, and a short body follows a
// long one intact.
func TestAppendReusesNothingVisible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, js := newLog(t, startServer(t, streams.Config{}))
	s, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("long body ", 200)
	for i, body := range []string{"one", long, long} {
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("a", i), Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := s.GetLastMsgForSubject(ctx, subjects.Msg("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get(msglog.HeaderPrev) == "" {
		t.Fatalf("c1's third entry has no %s: the test no longer covers a reused one", msglog.HeaderPrev)
	}
	if _, err := l.Append(ctx, msglog.Send{Conv: "c2", From: "u1", Cmid: "b0", Body: "short"}); err != nil {
		t.Fatal(err)
	}
	raw, err = s.GetLastMsgForSubject(ctx, subjects.Msg("c2"))
	if err != nil {
		t.Fatal(err)
	}
	if v := raw.Header.Values(msglog.HeaderPrev); len(v) != 0 {
		t.Fatalf("c2's first entry has %s %q, want none", msglog.HeaderPrev, v)
	}
	m, err := msglog.Decode(raw.Data, raw.Header)
	if err != nil || m.Body != "short" || m.Conv != "c2" || m.Seq != 1 {
		t.Fatalf("c2's first entry: %+v, %v; data %q", m, err, raw.Data)
	}
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != m.ID {
		t.Fatalf("%s %q, want %q", jetstream.MsgIDHeader, id, m.ID)
	}
}
