package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// TestEditAndDelete: Edit and Delete change the user's own messages, as
// history then shows them; another member's attempts are forbidden and a
// retry with the same cmid is a duplicate.
func TestEditAndDelete(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a, b := dial(t, urls, alice), dial(t, urls, bob)
	ctx := ctxT(t)
	conv, err := b.CreateDirect(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Send(ctx, conv.ID, "helo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Edit(ctx, conv.ID, m.ID, "mine"); !errors.Is(err, &client.Error{Code: protocol.CodeForbidden}) {
		t.Fatalf("bob edits alice's message: %v, want forbidden", err)
	}
	if _, err := b.Delete(ctx, conv.ID, m.ID); !errors.Is(err, &client.Error{Code: protocol.CodeForbidden}) {
		t.Fatalf("bob deletes alice's message: %v, want forbidden", err)
	}
	if _, err := a.Edit(ctx, conv.ID, m.ID, ""); !errors.Is(err, &client.Error{Code: protocol.CodeBadFrame}) {
		t.Fatalf("empty edit: %v, want bad_frame", err)
	}
	e, err := a.Edit(ctx, conv.ID, m.ID, "hello", client.WithCmid("fix-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Edit(ctx, conv.ID, m.ID, "hello", client.WithCmid("fix-1"))
	if err != nil || !again.Dup || again.Seq != e.Seq {
		t.Fatalf("retried edit: %+v %v, want a duplicate of %+v", again, err, e)
	}
	msgs, _, err := b.History(ctx, conv.ID, 0, 0)
	if err != nil || len(msgs) != 2 || msgs[0].Body != "hello" || msgs[0].EditedAt != e.TS {
		t.Fatalf("history after the edit: %+v %v", msgs, err)
	}
	if _, err := a.Delete(ctx, conv.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	msgs, _, err = b.History(ctx, conv.ID, 0, 0)
	if err != nil || len(msgs) != 3 || !msgs[0].Deleted || msgs[0].Body != "" || !msgs[1].Deleted || msgs[1].Body != "" {
		t.Fatalf("history after the delete: %+v %v", msgs, err)
	}
}

// TestReact: React adds and removes reactions idempotently, the other
// member gets ReactionEvents, and history shows the counts with Mine.
func TestReact(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a, b := dial(t, urls, alice), dial(t, urls, bob)
	ctx := ctxT(t)
	conv, err := b.CreateDirect(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Send(ctx, conv.ID, "lunch?")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r, err := b.React(ctx, conv.ID, m.ID, "👍", false); err != nil || r.Count != 1 || !r.Mine {
			t.Fatalf("react: %+v %v", r, err)
		}
	}
	select {
	case f := <-a.ReactionEvents():
		if f.Conv != conv.ID || f.Ref != m.ID || f.User != bob || f.Emoji != "👍" || f.Count != 1 {
			t.Fatalf("reaction event %+v", f)
		}
	case <-ctx.Done():
		t.Fatal("no reaction event")
	}
	msgs, _, err := a.History(ctx, conv.ID, 0, 0)
	if err != nil || msgs[0].Reactions == nil || len(*msgs[0].Reactions) != 1 || (*msgs[0].Reactions)[0] != (natter.Reaction{Emoji: "👍", Count: 1}) {
		t.Fatalf("alice's history: %+v %v", msgs, err)
	}
	msgs, _, err = b.History(ctx, conv.ID, 0, 0)
	if err != nil || msgs[0].Reactions == nil || !(*msgs[0].Reactions)[0].Mine {
		t.Fatalf("bob's history: %+v %v", msgs, err)
	}
	if r, err := b.React(ctx, conv.ID, m.ID, "👍", true); err != nil || r.Count != 0 || r.Mine {
		t.Fatalf("remove: %+v %v", r, err)
	}
	if _, err := b.React(ctx, conv.ID, m.ID, "a b", false); !errors.Is(err, &client.Error{Code: protocol.CodeBadFrame}) {
		t.Fatalf("bad emoji: %v, want bad_frame", err)
	}
}

// TestRepliesAndThread: WithReplyTo and WithThread reach the other member,
// the root counts its replies in history, Thread pages the replies, and a
// reply to an unknown message is not_found.
func TestRepliesAndThread(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a, b := dial(t, urls, alice), dial(t, urls, bob)
	ctx := ctxT(t)
	conv, err := b.CreateDirect(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	root, err := a.Send(ctx, conv.ID, "root")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := b.Send(ctx, conv.ID, "re 1", client.WithThread(root.ID), client.WithReplyTo(root.ID))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := a.Send(ctx, conv.ID, "re 2", client.WithThread(root.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, conv.ID, "x", client.WithReplyTo("m_nosuchmessage")); !errors.Is(err, &client.Error{Code: protocol.CodeNotFound}) {
		t.Fatalf("reply to an unknown message: %v, want not_found", err)
	}
	msgs, _, err := b.History(ctx, conv.ID, 0, 0)
	if err != nil || len(msgs) != 3 || msgs[0].ThreadReplies != 2 || msgs[0].ThreadLastAt != r2.TS || msgs[1].ReplyTo != root.ID || msgs[1].Thread != root.ID {
		t.Fatalf("history: %+v %v", msgs, err)
	}
	th, more, err := b.Thread(ctx, conv.ID, root.ID, 0, 1)
	if err != nil || len(th) != 1 || th[0].Seq != r2.Seq || !more {
		t.Fatalf("newest thread page: %+v more %v %v", th, more, err)
	}
	th, more, err = b.Thread(ctx, conv.ID, root.ID, r2.Seq, 0)
	if err != nil || len(th) != 1 || th[0].Seq != r1.Seq || more {
		t.Fatalf("older thread page: %+v more %v %v", th, more, err)
	}
}

// TestMentions: WithMentions sends the mentions, history returns them, and
// a mention of a non-member and @all in a direct conversation are refused.
func TestMentions(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a, b := dial(t, urls, alice), dial(t, urls, bob)
	ctx := ctxT(t)
	conv, err := b.CreateDirect(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := a.Send(ctx, conv.ID, "@bob", client.WithMentions(bob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.ID, "x", client.WithMentions(uniq("carol"))); !errors.Is(err, &client.Error{Code: protocol.CodeBadFrame}) {
		t.Fatalf("mention of a non-member: %v, want bad_frame", err)
	}
	if _, err := a.Send(ctx, conv.ID, "x", client.WithMentions(natter.MentionAll)); !errors.Is(err, &client.Error{Code: protocol.CodeForbidden}) {
		t.Fatalf("@all in a direct conversation: %v, want forbidden", err)
	}
	msgs, _, err := b.History(ctx, conv.ID, 0, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Seq != ack.Seq || fmt.Sprint(msgs[0].Mentions) != "["+bob+"]" {
		t.Fatalf("history: %+v %v", msgs, err)
	}
}
