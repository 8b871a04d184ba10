package actions_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/streams"
)

func open(t *testing.T) *actions.Bucket {
	t.Helper()
	_, nc, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	b, err := actions.Open(ctx, nc, js)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func msg(seq uint64, typ, body, ref string) natter.Message {
	return natter.Message{ID: fmt.Sprintf("m_%d", seq), Conv: "g_1", Seq: seq, From: "alice", Cmid: fmt.Sprint("c", seq), Type: typ, Body: body, Ref: ref, TS: int64(1000 + seq)}
}

// page reads seqs 1..n and applies them to msgs.
func page(t *testing.T, b *actions.Bucket, user string, msgs ...natter.Message) []natter.Message {
	t.Helper()
	p, err := b.Page(context.Background(), "g_1", msgs[0].Seq, msgs[len(msgs)-1].Seq, user)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]natter.Message(nil), msgs...)
	p.Decorate(out)
	return out
}

// Applying the same entries in any order, any number of times, gives the
// same result: the newest edit wins, a delete wins over every edit and
// takes the text of the edit entries too.
func TestApplyOrderAndRepeats(t *testing.T) {
	t.Parallel()
	target := msg(1, "text", "helo", "")
	e1 := msg(2, natter.TypeEdit, "hello", target.ID)
	e2 := msg(3, natter.TypeEdit, "hello!", target.ID)
	del := msg(4, natter.TypeDelete, "", target.ID)
	for _, order := range [][]natter.Message{{e1, e2}, {e2, e1, e2}, {e2, e1}} {
		b := open(t)
		for _, e := range order {
			if err := b.Apply(context.Background(), target, e); err != nil {
				t.Fatal(err)
			}
		}
		got := page(t, b, "", target, e1, e2)
		if got[0].Body != "hello!" || got[0].EditedAt != e2.TS || got[1].Body != "hello" || got[1].Deleted {
			t.Fatalf("order %v: %+v", order, got)
		}
	}
	for _, order := range [][]natter.Message{{e1, e2, del}, {del, e2, e1}, {e1, del, e2, del}} {
		b := open(t)
		for _, e := range order {
			if err := b.Apply(context.Background(), target, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range page(t, b, "", target, e1, e2, del) {
			if m.Type != natter.TypeDelete && (!m.Deleted || m.Body != "" || m.EditedAt != 0) {
				t.Fatalf("order %d..: %+v keeps text", order[0].Seq, m)
			}
		}
	}
}

// React is idempotent per user, message and emoji, bounded in distinct
// emoji, and pages mark the asking user's own.
func TestReact(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	m := msg(70, "text", "lunch?", "") // block 1
	step := func(user, emoji string, add, wantChanged bool, wantCount int) {
		t.Helper()
		changed, n, _, err := b.React(ctx, m, user, emoji, add)
		if err != nil || changed != wantChanged || n != wantCount {
			t.Fatalf("%s %s add=%v: changed %v count %d err %v; want %v %d", user, emoji, add, changed, n, err, wantChanged, wantCount)
		}
	}
	step("bob", "👍", true, true, 1)
	step("bob", "👍", true, false, 1)
	step("carol", "👍", true, true, 2)
	step("carol", "🎉", true, true, 1)
	step("dave", "🎉", false, false, 1)
	got := page(t, b, "bob", msg(69, "text", "x", ""), m)
	if got[0].Reactions != nil || got[1].Reactions == nil || fmt.Sprint(*got[1].Reactions) != "[{👍 2 true} {🎉 1 false}]" {
		t.Fatalf("bob's page: %+v", got)
	}
	step("carol", "🎉", false, true, 0)
	if got := page(t, b, "carol", m); fmt.Sprint(*got[0].Reactions) != "[{👍 2 true}]" {
		t.Fatalf("carol's page: %v", *got[0].Reactions)
	}
	for i := range actions.MaxReactions - 1 {
		step("bob", fmt.Sprint(":e", i, ":"), true, true, 1)
	}
	if _, _, _, err := b.React(ctx, m, "bob", ":one-more:", true); !errors.Is(err, actions.ErrTooManyReactions) {
		t.Fatalf("past %d distinct: %v", actions.MaxReactions, err)
	}
	step("carol", ":e0:", true, true, 2)
}
