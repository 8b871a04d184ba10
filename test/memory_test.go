package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestNoStatePerMessage sends 240 messages into 3 conversations and checks
// that no stream or bucket natter writes keeps a subject per message (nats-
// server holds every subject of a stream in memory, on every replica, for
// as long as it has an entry): each stream's subjects stay bounded by the
// conversations, not the messages. And that no stream keeps message ids
// longer than 2 minutes by default (the dedup window, also held in memory
// and rebuilt at start).
func TestNoStatePerMessage(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	var convs []natter.Conversation
	for _, with := range []string{"bob", "carol"} {
		var c natter.Conversation
		alice.request("cd-"+with, `{"op":"conv.create","id":"cd-`+with+`","kind":"direct","with":"`+with+`"}`, &c)
		convs = append(convs, c)
	}
	convs = append(convs, alice.createGroup("g", "bob", "carol"))
	const perConv = 80
	for i := range perConv {
		for _, c := range convs {
			alice.send(c.ID, fmt.Sprint("m", i, "-", c.ID), "hello")
		}
	}
	total := int64(perConv * len(convs))
	ctx := context.Background()
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n, err := m.dev.Store().CountMessages(ctx, ""); err != nil || n != total {
			return fmt.Errorf("archived %d of %d (%v)", n, total, err)
		}
		return nil
	})

	nc, err := nats.Connect(m.dev.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// (Message events are the log's entries: nothing is copied to EVENTS.)

	// Bounded: a few subjects per conversation (log, event kinds, cursors)
	// plus a few per user and per role; 240 messages must not show.
	const bound = 40
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(info.State.Subjects); n > bound {
			var some []string
			for subj := range info.State.Subjects {
				if some = append(some, subj); len(some) == 3 {
					break
				}
			}
			t.Errorf("stream %s holds %d subjects after %d messages in %d conversations (want at most %d), e.g. %s",
				name, n, total, len(convs), bound, strings.Join(some, ", "))
		}
		if d := info.Config.Duplicates; d > 2*time.Minute {
			t.Errorf("stream %s keeps message ids for %s (dedup window), want at most 2m by default", name, d)
		}
	}
	if _, err := js.KeyValue(ctx, subjects.BucketIdem); err == nil {
		t.Errorf("bucket %s exists: natter should no longer create it", subjects.BucketIdem)
	}
}

// TestRetryAnsweredByArchive retries a send, on another edge, after the
// dedup window and after its original has left the hot tier (HotTier 2):
// only the archive (the conversations service's message op) can answer,
// with the original id, seq and ts, and nothing is stored twice.
func TestRetryAnsweredByArchive(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, streams: streams.Config{DedupWindow: 100 * time.Millisecond, HotTier: 2}})
	a1 := mustDial(t, m.edges[0], "alice")
	a2 := mustDial(t, m.edges[1], "alice")
	var conv natter.Conversation
	a1.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"bob"}`, &conv)
	ctx := context.Background()
	stored := func(want int64) {
		t.Helper()
		testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if n, err := m.dev.Store().CountMessages(ctx, conv.ID); err != nil || n != want {
				return fmt.Errorf("stored %d (%v), want %d", n, err, want)
			}
			return nil
		})
	}

	first := a1.send(conv.ID, "retry-me", "once")
	stored(1)
	for i := range 3 { // trims the original from the hot tier (after it is archived)
		a1.send(conv.ID, fmt.Sprint("later", i), "more")
	}
	stored(4)

	nc, err := nats.Connect(m.dev.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, _ := js.Stream(ctx, subjects.StreamMsgs)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subjects.Msg(conv.ID)))
	if err != nil || info.State.Subjects[subjects.Msg(conv.ID)] != 2 {
		t.Fatalf("hot tier: %v, %v; want 2 entries", info.State.Subjects, err)
	}
	waitDedupWindow(t, js)

	ack := a2.send(conv.ID, "retry-me", "once")
	if ack.ID != first.ID || ack.Seq != first.Seq || ack.TS != first.TS || !ack.Dup {
		t.Fatalf("retry: %+v, want %+v with dup", ack, first)
	}
	// Nothing new: give a wrongly appended copy time to reach the archive.
	last := a2.send(conv.ID, "marker", "after")
	if last.Seq != 5 {
		t.Fatalf("next send got seq %d, want 5 (the retry appended an entry?)", last.Seq)
	}
	stored(5)
}
