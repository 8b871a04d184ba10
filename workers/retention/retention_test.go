package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/retention"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// env is a log, the persist role archiving it into an embedded store, and
// a clock the test moves: it stamps the messages and drives the sweeper.
type env struct {
	js   jetstream.JetStream
	log  *msglog.Log
	st   *store.Store
	acts *actions.Bucket
	now  atomic.Int64
	sent map[string]int
}

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	_, nc, js := testenv.StartJetStream(t)
	if _, err := streams.Apply(ctx, js, streams.Config{AckWait: 2 * time.Second, MaxDeliver: 5}); err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, st: storetest.New(t), sent: map[string]int{}}
	e.now.Store(start.UnixNano())
	l, err := msglog.New(ctx, nc, js, msglog.Config{Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	e.log = l
	if e.acts, err = actions.Open(ctx, nc, js); err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(js, runner.Config{Role: "persist", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist, BatchSize: 64, RetryDelay: 50 * time.Millisecond},
		persist.New(e.st, l, nil, persist.WithActions(e.acts)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return e
}

func (e *env) clock() time.Time        { return time.Unix(0, e.now.Load()) }
func (e *env) advance(d time.Duration) { e.now.Add(int64(d)) }

func (e *env) sweeper(t *testing.T, cfg retention.Config) *retention.Sweeper {
	t.Helper()
	cfg.Now = e.clock
	s, err := retention.New(context.Background(), e.st, e.log, e.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send appends n messages to conv at the clock's time.
func (e *env) send(t *testing.T, conv string, n int) {
	t.Helper()
	for range n {
		e.sent[conv]++
		if _, err := e.log.Append(context.Background(), msglog.Send{Conv: conv, From: "alice", Cmid: fmt.Sprint("c", e.sent[conv]), Body: fmt.Sprint("m", e.sent[conv])}); err != nil {
			t.Fatal(err)
		}
	}
}

// archived waits until persist has stored every message sent.
func (e *env) archived(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		c, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("persist: pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

func (e *env) sweep(t *testing.T, s *retention.Sweeper) retention.Report {
	t.Helper()
	rep, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(retention.Failed); n > 0 {
		t.Fatalf("sweep: %d checks failed: %+v", n, rep.Results)
	}
	return rep
}

// kept checks that conv holds exactly seqs from..to (to = its head), in
// order, in the archive (messages collection and blocks) and the hot
// tier, and nothing older: not in the archive, not readable from the hot
// tier.
func (e *env) kept(t *testing.T, conv string, from, to uint64) {
	t.Helper()
	ctx := context.Background()
	n, err := e.st.CountMessages(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(to-from+1) {
		t.Fatalf("%s: %d archived messages, want %d (seqs %d..%d)", conv, n, to-from+1, from, to)
	}
	old, err := e.st.MessagesRange(ctx, conv, 1, from-1, 0)
	if err != nil || len(old) != 0 {
		t.Fatalf("%s: %d archived messages below %d (%v)", conv, len(old), from, err)
	}
	for a := from; a <= to; a += 64 {
		b := min(store.BlockFirst(store.BlockOf(a))+store.BlockSize-1, to)
		if got, ok, err := e.st.ArchiveRange(ctx, conv, a, b); err != nil || (ok && (len(got) == 0 || got[0].Seq != a || got[0].Body == "")) {
			t.Fatalf("%s: archive block read %d..%d: ok=%v err=%v", conv, a, b, ok, err)
		}
	}
	if from > 1 {
		bs, ok, err := e.st.ArchiveRange(ctx, conv, store.BlockFirst(store.BlockOf(from-1)), from-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bs {
			if ok && (m.Body != "" || m.Cmid != "") {
				t.Fatalf("%s: seq %d below the floor still has its text in a block", conv, m.Seq)
			}
		}
	}
	msgs, head, err := e.log.After(ctx, conv, 0, 10)
	var te *msglog.TrimmedError
	if from > 1 && !errors.As(err, &te) {
		t.Fatalf("%s: hot tier read from seq 1: %d messages, %v; want trimmed", conv, len(msgs), err)
	}
	if from > 1 && te.Oldest != from {
		t.Fatalf("%s: hot tier oldest %d, want %d", conv, te.Oldest, from)
	}
	if head != to {
		t.Fatalf("%s: head %d, want %d", conv, head, to)
	}
	got, _, err := e.log.After(ctx, conv, from-1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(min(to-from+1, 500)) {
		t.Fatalf("%s: hot tier holds %d from %d, want %d", conv, len(got), from, to-from+1)
	}
	for i, m := range got {
		if m.Seq != from+uint64(i) || m.Body != fmt.Sprint("m", m.Seq) {
			t.Fatalf("%s: hot tier entry %d = seq %d %q", conv, i, m.Seq, m.Body)
		}
	}
}

// expiredEvent returns the newest messages_expired event of conv.
func (e *env) expiredEvent(t *testing.T, conv string) (natter.EventExpired, bool) {
	t.Helper()
	st, err := e.js.Stream(context.Background(), subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(context.Background(), subjects.Event(natter.EventMessagesExpired, conv))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return natter.EventExpired{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev natter.Event
	var d natter.EventExpired
	if err := json.Unmarshal(raw.Data, &ev); err != nil || json.Unmarshal(ev.Data, &d) != nil {
		t.Fatalf("event: %s", raw.Data)
	}
	if ev.Kind != natter.EventMessagesExpired || ev.Conv != conv || ev.Actor != retention.Actor || ev.ID != fmt.Sprintf("expired:%s:%d", conv, d.To) {
		t.Fatalf("event envelope %+v", ev)
	}
	return d, true
}

func result(t *testing.T, rep retention.Report, conv string) retention.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Conv == conv {
			return r
		}
	}
	t.Fatalf("%s not checked: %+v", conv, rep.Results)
	return retention.Result{}
}

// TestAgeLimit: with a clock the test moves, messages older than the
// direct class's 2 days go from the archive (messages, blocks), the hot
// tier and ACTIONS; newer ones stay, in order; a messages_expired event
// names the range; a group (no group policy) and a conversation whose
// messages are all old (it keeps its newest) are handled as documented.
func TestAgeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "d_a", 99)
	e.sent["d_a"]++ // seq 100 carries an attachment
	if _, err := e.log.Append(ctx, msglog.Send{Conv: "d_a", From: "alice", Cmid: "c100", Body: "m100",
		Attachments: []natter.Attachment{{ID: "a_photo", Size: 5, Type: "image/png"}}}); err != nil {
		t.Fatal(err)
	}
	e.send(t, "d_c", 10)
	e.send(t, "g_b", 70)
	e.advance(24 * time.Hour)
	e.send(t, "d_a", 30)
	e.archived(t)
	m5, err := e.st.GetMessage(ctx, msglog.MessageID("d_a", "alice", "c5"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.acts.React(ctx, m5, "bob", "👍", true); err != nil {
		t.Fatal(err)
	}
	var dropped []string
	s := e.sweeper(t, retention.Config{Direct: retention.Policy{Days: 2}, DropAttachments: func(_ context.Context, ids []string) error {
		dropped = append(dropped, ids...)
		return nil
	}})

	rep := e.sweep(t, s)
	if rep.Count(retention.Expired) != 0 || rep.Tailed != 210 {
		t.Fatalf("first sweep, a day in: %+v", rep)
	}
	e.advance(24*time.Hour + 2*time.Minute) // the first messages are 2 days and 2 minutes old
	rep = e.sweep(t, s)
	if r := result(t, rep, "d_a"); r.Outcome != retention.Expired || r.From != 1 || r.To != 100 || r.Reason != "days" || r.Removed != 100 {
		t.Fatalf("d_a: %+v", r)
	}
	e.kept(t, "d_a", 101, 130)
	if r := result(t, rep, "d_c"); r.Outcome != retention.Expired || r.To != 9 {
		t.Fatalf("d_c (all old: keeps its newest): %+v", r)
	}
	e.kept(t, "d_c", 10, 10)
	if rep.Count(retention.Expired) != 2 {
		t.Fatalf("expired in %d conversations: %+v", rep.Count(retention.Expired), rep.Results)
	}
	e.kept(t, "g_b", 1, 70)
	if ev, ok := e.expiredEvent(t, "d_a"); !ok || !reflect.DeepEqual(ev, natter.EventExpired{From: 1, To: 100, Count: 100, Floor: 101, Reason: "days", Attached: []string{msglog.MessageID("d_a", "alice", "c100")}}) {
		t.Fatalf("d_a event: %+v %v", ev, ok)
	}
	if len(dropped) != 1 || dropped[0] != msglog.MessageID("d_a", "alice", "c100") {
		t.Fatalf("attachments dropped for %v", dropped)
	}
	if _, ok := e.expiredEvent(t, "g_b"); ok {
		t.Fatal("g_b: an expiry event")
	}
	if _, ok, err := e.acts.Get(ctx, "d_a", 5); err != nil || ok {
		t.Fatalf("d_a seq 5's reaction record: found %v, %v", ok, err)
	}
	if floor, err := e.st.RetentionFloor(ctx, "d_a"); err != nil || floor != 101 {
		t.Fatalf("d_a floor %d, %v", floor, err)
	}

	// Nothing more until the newer ones age; then they go too (the
	// newest stays).
	rep = e.sweep(t, s)
	if rep.Count(retention.Expired) != 0 {
		t.Fatalf("sweep again: %+v", rep.Results)
	}
	e.advance(24 * time.Hour)
	e.sweep(t, s)
	e.kept(t, "d_a", 130, 130)
}

// TestMessageLimit: a group class limit of 50 keeps each group's newest 50
// messages; new messages past the limit bring the group back through the
// tail of the log, without a schedule.
func TestMessageLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.send(t, "g_x", 200)
	e.send(t, "g_y", 20)
	e.send(t, "g_z", 60) // its first block is still open when 1..10 go
	e.archived(t)
	s := e.sweeper(t, retention.Config{Group: retention.Policy{Messages: 50}})
	rep := e.sweep(t, s)
	if r := result(t, rep, "g_x"); r.Outcome != retention.Expired || r.From != 1 || r.To != 150 || r.Reason != "messages" {
		t.Fatalf("g_x: %+v", r)
	}
	e.kept(t, "g_x", 151, 200)
	e.kept(t, "g_y", 1, 20)
	e.kept(t, "g_z", 11, 60)
	// Its block completes after the removal: persist writes it without
	// the removed messages' text (kept checks the block below the floor).
	e.send(t, "g_z", 4)
	e.archived(t)
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n, err := e.st.CountBlocks(context.Background(), "g_z"); err != nil || n != 1 {
			return fmt.Errorf("g_z: %d blocks (%v)", n, err)
		}
		return nil
	})
	e.kept(t, "g_z", 11, 64)
	e.send(t, "g_x", 20)
	e.archived(t)
	e.advance(2 * time.Minute)
	rep = e.sweep(t, s)
	if r := result(t, rep, "g_x"); r.Outcome != retention.Expired || r.From != 151 || r.To != 170 {
		t.Fatalf("g_x after 20 more: %+v", r)
	}
	e.kept(t, "g_x", 171, 220)
	if ev, ok := e.expiredEvent(t, "g_x"); !ok || ev.From != 151 || ev.To != 170 || ev.Floor != 171 {
		t.Fatalf("g_x event: %+v %v", ev, ok)
	}
}

// TestLegalHold: a hold suspends removal (the check says held, nothing
// goes, no event); lifting it resumes at the next sweep.
func TestLegalHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "g_h", 100)
	e.archived(t)
	hold, release := true, false
	if _, err := retention.Change(ctx, e.st, "g_h", store.RetentionPolicy{Hold: &hold}, e.clock()); err != nil {
		t.Fatal(err)
	}
	s := e.sweeper(t, retention.Config{Group: retention.Policy{Messages: 10}})
	e.advance(2 * time.Minute)
	rep := e.sweep(t, s)
	if r := result(t, rep, "g_h"); r.Outcome != retention.Held {
		t.Fatalf("held: %+v", r)
	}
	e.send(t, "g_h", 10) // new entries past the limit: still held
	e.archived(t)
	e.advance(2 * time.Minute)
	e.sweep(t, s)
	e.kept(t, "g_h", 1, 110)
	if _, ok := e.expiredEvent(t, "g_h"); ok {
		t.Fatal("an expiry event under hold")
	}
	if _, err := retention.Change(ctx, e.st, "g_h", store.RetentionPolicy{Hold: &release}, e.clock()); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Minute)
	rep = e.sweep(t, s)
	if r := result(t, rep, "g_h"); r.Outcome != retention.Expired || r.To != 100 {
		t.Fatalf("hold lifted: %+v", r)
	}
	e.kept(t, "g_h", 101, 110)
}

// TestPrecedence: a conversation's own limit overrides its class's field
// by field (0 keeps forever; -1 returns to the class), and a change takes
// effect at the next sweep.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []string{"d_class", "d_own", "d_forever"} {
		e.send(t, c, 40)
	}
	e.archived(t)
	five, zero, back := 5, 0, -1
	if _, err := retention.Change(ctx, e.st, "d_own", store.RetentionPolicy{Messages: &five}, e.clock()); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.Change(ctx, e.st, "d_forever", store.RetentionPolicy{Messages: &zero}, e.clock()); err != nil {
		t.Fatal(err)
	}
	s := e.sweeper(t, retention.Config{Direct: retention.Policy{Messages: 10}})
	e.advance(2 * time.Minute)
	e.sweep(t, s)
	e.kept(t, "d_class", 31, 40)
	e.kept(t, "d_own", 36, 40)
	e.kept(t, "d_forever", 1, 40)
	if _, err := retention.Change(ctx, e.st, "d_forever", store.RetentionPolicy{Messages: &back}, e.clock()); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Minute)
	e.sweep(t, s)
	e.kept(t, "d_forever", 31, 40)
}

// TestDeletedConversation: a conversation an operator deleted (its archive
// gone, its hot tier down to its last entry) is checked without failing
// and scheduled for when that entry ages, not every minute.
func TestDeletedConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "g_del", 10)
	e.archived(t)
	// The deletion below must see all ten (a full suite once left 2 behind it).
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n, err := e.st.CountMessages(ctx, "g_del"); err != nil || n != 10 {
			return fmt.Errorf("%d of 10 stored (%v)", n, err)
		}
		return nil
	})
	if _, _, err := e.st.DeleteConversationMessages(ctx, "g_del"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.st.CountMessages(ctx, "g_del"); err != nil || n != 0 {
		t.Fatalf("after the deletion %d messages of g_del stored (%v)", n, err)
	}
	st, err := e.js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subjects.Msg("g_del")), jetstream.WithPurgeKeep(1)); err != nil {
		t.Fatal(err)
	}
	s := e.sweeper(t, retention.Config{Group: retention.Policy{Days: 1}})
	e.advance(2 * 24 * time.Hour)
	rep := e.sweep(t, s)
	r := result(t, rep, "g_del")
	if r.Outcome != retention.Kept || !r.Next.Equal(e.clock().Add(24*time.Hour)) {
		t.Fatalf("deleted conversation: %+v", r)
	}
}
