package msglog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
)

// TestAppendFirstAttempt: a first attempt skips the retry check, yet every
// resend is answered with the original ack: inside the dedup window by
// JetStream (also with a stale head), after it by the check (here the hot
// tier) as long as the resend says it is not a first attempt. The controls show the lookup
// really is skipped: a resend that claims to be a first attempt after the
// window is stored again when the head is cached, and still caught when it
// is not.
func TestAppendFirstAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{DedupWindow: 100 * time.Millisecond}) // the server's minimum
	l1, js := newLog(t, s)
	l2, _ := newLog(t, s)
	send := func(l *msglog.Log, cmid string, first bool) natter.Ack {
		t.Helper()
		ack, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: cmid, Body: "hi " + cmid, FirstAttempt: first})
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	dupOf := func(what string, got, want natter.Ack) {
		t.Helper()
		want.Dup = true
		if got != want {
			t.Fatalf("%s: ack %+v, want %+v", what, got, want)
		}
	}

	a := send(l1, "a", true)
	if a.Dup || a.Seq != 1 {
		t.Fatalf("first attempt: ack %+v", a)
	}
	dupOf("resend claiming to be a first attempt, inside the window", send(l1, "a", true), a)

	// l2 appends b; l1's cached head (seq 1) is stale now. l1's resend of b
	// fails the compare-and-set, and the retry finds the original.
	b := send(l2, "b", true)
	dupOf("first-attempt resend with a stale head, inside the window", send(l1, "b", true), b)

	waitDedupWindow(t, js)
	dupOf("retry after the window, same log", send(l1, "a", false), a)
	dupOf("retry after the window, other log", send(l2, "a", false), a)
	dupOf("retry of b after the window", send(l1, "b", false), b)
	if n := entries(t, js, "c1"); n != 2 {
		t.Fatalf("%d log entries, want 2", n)
	}

	// Controls. After appending c, l1 has the head cached: a resend that
	// wrongly claims to be a first attempt after the window is the caller's
	// own duplicate.
	if c := send(l1, "c", true); c.Dup || c.Seq != 3 {
		t.Fatalf("c: ack %+v", c)
	}
	if again := send(l1, "a", true); again.Dup || again.Seq != 4 {
		t.Fatalf("first-attempt resend after the window, head cached: ack %+v, want a new entry (seq 4)", again)
	}
	// A Log without the head cached checks all the same.
	l3, _ := newLog(t, s)
	dupOf("first-attempt resend after the window, head not cached", send(l3, "a", true), a)
	if n := entries(t, js, "c1"); n != 4 {
		t.Fatalf("%d log entries, want 4", n)
	}
}

// TestAppendFirstAttemptRace sends each message as a first attempt through
// two Logs at once (an edge that timed out and one the client moved to),
// while a third Log keeps appending other messages to the same
// conversation, so that the two keep losing the compare-and-set to it and to
// each other. Each message must be stored exactly once and both attempts
// must get its ack.
func TestAppendFirstAttemptRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	l1, js := newLog(t, s)
	l2, _ := newLog(t, s)
	l3, _ := newLog(t, s)
	const msgs = 100

	stop := make(chan struct{})
	var other sync.WaitGroup
	others := 0
	other.Go(func() {
		for i := 0; i < 4*msgs; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l3.Append(ctx, msglog.Send{Conv: "race", From: "u2", Cmid: fmt.Sprint("o", i), Body: "other", FirstAttempt: true}); err != nil {
				t.Error(err)
				return
			}
			others++
		}
	})
	for i := range msgs {
		send := msglog.Send{Conv: "race", From: "u1", Cmid: fmt.Sprint("m", i), Body: fmt.Sprint("body ", i), FirstAttempt: true}
		var acks [2]natter.Ack
		var errs [2]error
		var wg sync.WaitGroup
		for j, l := range []*msglog.Log{l1, l2} {
			wg.Go(func() { acks[j], errs[j] = l.Append(ctx, send) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		a, b := acks[0], acks[1]
		if a.Dup == b.Dup || a.ID != b.ID || a.Seq != b.Seq || a.TS != b.TS {
			t.Fatalf("message %d: acks %+v and %+v, want one original and one duplicate of it", i, a, b)
		}
	}
	close(stop)
	other.Wait()

	got, head, err := l1.After(ctx, "race", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if head != uint64(msgs+others) || len(got) != msgs+others {
		t.Fatalf("head %d, %d entries; want %d (%d messages, %d others)", head, len(got), msgs+others, msgs, others)
	}
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Cmid]++
		if seen[m.Cmid] > 1 {
			t.Fatalf("cmid %s stored twice (seq %d)", m.Cmid, m.Seq)
		}
	}
	if n := entries(t, js, "race"); n != uint64(msgs+others) {
		t.Fatalf("%d log entries, want %d", n, msgs+others)
	}
}

// TestCloseAfterAppends: Close after appends, twice, is fine.
func TestCloseAfterAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLog(t, startServer(t, streams.Config{}))
	for i := range 50 {
		if _, err := l.Append(ctx, msglog.Send{Conv: "c1", From: "u1", Cmid: fmt.Sprint("m", i), Body: "hi", FirstAttempt: true}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
