package client_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

// TestBlocking: alice blocks bob through real edges: bob's sends in their
// direct conversation and a new start of it get forbidden and store
// nothing (bob's edge had the conversation cached from before the block);
// bob, who watched alice's presence online, is pushed offline and is
// answered offline on a new subscribe while alice stays online for carol;
// group messages are not filtered; unblocking restores all of it.
func TestBlocking(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	a := dial(t, []string{wsURL(dev)}, alice)
	b := dial(t, []string{wsURL(edgeA)}, bob)
	c := dial(t, []string{wsURL(edgeA)}, carol)
	ctx := ctxT(t)

	d, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.CreateGroup(ctx, "Team", bob, carol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, d.ID, "hi alice"); err != nil { // edge A caches d
		t.Fatal(err)
	}
	if sts, err := b.SubscribePresence(ctx, alice); err != nil || !sts[0].Online {
		t.Fatalf("bob watches alice: %+v %v", sts, err)
	}
	if sts, err := c.SubscribePresence(ctx, alice); err != nil || !sts[0].Online {
		t.Fatalf("carol watches alice: %+v %v", sts, err)
	}

	if _, err := b.Block(ctx, bob); protocol.CodeOf(err) != protocol.CodeBadFrame {
		t.Fatalf("blocking yourself: %v, want bad_frame", err)
	}
	list, err := a.Block(ctx, bob)
	if err != nil || !slices.Equal(list, []string{bob}) {
		t.Fatalf("block: %v %v", list, err)
	}
	nextPresence(t, b, alice, false) // pushed offline to bob
	// Bob's edge decides by the block list it cached until the block's
	// notice reaches it (docs/protocol.md, "Blocking"): the presence push
	// may come first, and a send before the notice is accepted. Send until
	// refused; the history below holds exactly the accepted ones.
	accepted := 0
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := b.Send(ctx, d.ID, "still there?")
		if err == nil {
			accepted++
			return errors.New("accepted: the block's notice has not reached bob's edge yet")
		}
		if protocol.CodeOf(err) != protocol.CodeForbidden {
			t.Fatalf("a blocked user's send: %v, want forbidden", err)
		}
		return nil
	})
	if _, err := b.CreateDirect(ctx, alice); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("a blocked user starting the conversation: %v, want forbidden", err)
	}
	b2 := dial(t, []string{wsURL(dev)}, bob) // another edge, another subscribe
	if sts, err := b2.SubscribePresence(ctx, alice); err != nil || sts[0].Online || sts[0].LastSeen != 0 {
		t.Fatalf("bob subscribing to alice after the block: %+v %v, want offline without last_seen", sts, err)
	}
	if sts, err := c.SubscribePresence(ctx, alice); err != nil || !sts[0].Online {
		t.Fatalf("carol still sees alice: %+v %v", sts, err)
	}
	if _, err := a.Send(ctx, d.ID, "the blocker may still write"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, g.ID, "group messages are not filtered"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Blocks(ctx); err != nil || len(got) != 0 {
		t.Fatalf("bob blocks %v %v, want none", got, err)
	}
	if got, err := a.Blocks(ctx); err != nil || !slices.Equal(got, []string{bob}) {
		t.Fatalf("alice blocks %v %v", got, err)
	}

	if list, err := a.Unblock(ctx, bob); err != nil || len(list) != 0 {
		t.Fatalf("unblock: %v %v", list, err)
	}
	nextPresence(t, b, alice, true)
	// Bob's edge decides by the block list it cached until the unblock's
	// notice reaches it (docs/protocol.md, "Blocking"): the presence push
	// may come first. A refused send stores nothing, so send until accepted.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := b.Send(ctx, d.ID, "thanks")
		if err != nil && protocol.CodeOf(err) != protocol.CodeForbidden {
			t.Fatalf("send after the unblock: %v", err)
		}
		return err
	})
	msgs, _, err := a.History(ctx, d.ID, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, m.Body)
	}
	want := []string{"hi alice"}
	for range accepted {
		want = append(want, "still there?")
	}
	if want = append(want, "the blocker may still write", "thanks"); !slices.Equal(bodies, want) {
		t.Fatalf("direct history %q, want %q (the refused send stored nothing)", bodies, want)
	}
}

// TestChangesSeenByTheNextRequest: a change made through an edge (a block,
// an unblock, a mute, an unmute, a member added or removed) decides the
// very next send on that edge, though the service's change notice may
// reach the edge after the change's reply (it comes on another NATS
// connection). Repeated, since a late notice is a race.
func TestChangesSeenByTheNextRequest(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	a := dial(t, []string{wsURL(dev)}, alice)
	b := dial(t, []string{wsURL(dev)}, bob)
	c := dial(t, []string{wsURL(dev)}, carol)
	ctx := ctxT(t)
	d, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.CreateGroup(ctx, "Team", bob)
	if err != nil {
		t.Fatal(err)
	}
	want := func(what string, err error, code protocol.Code) {
		t.Helper()
		if protocol.CodeOf(err) != code {
			t.Fatalf("%s: %v, want %q", what, err, code)
		}
	}
	for i := range 15 {
		_, err := b.Send(ctx, d.ID, "before")
		want("a send before the block", err, "")
		_, err = a.Block(ctx, bob)
		want("block", err, "")
		_, err = b.Send(ctx, d.ID, "blocked")
		want(fmt.Sprintf("round %d: bob's send right after the block", i), err, protocol.CodeForbidden)
		_, err = a.Unblock(ctx, bob)
		want("unblock", err, "")
		_, err = b.Send(ctx, d.ID, "after")
		want(fmt.Sprintf("round %d: bob's send right after the unblock", i), err, "")

		want("mute", a.Mute(ctx, g.ID, time.Hour, bob), "")
		_, err = b.Send(ctx, g.ID, "muted")
		want(fmt.Sprintf("round %d: bob's send right after his mute", i), err, protocol.CodeForbidden)
		want("unmute", a.Unmute(ctx, g.ID, bob), "")
		_, err = b.Send(ctx, g.ID, "unmuted")
		want(fmt.Sprintf("round %d: bob's send right after his unmute", i), err, "")

		want("add", a.AddMembers(ctx, g.ID, carol), "")
		_, err = c.Send(ctx, g.ID, "added")
		want(fmt.Sprintf("round %d: carol's send right after she was added", i), err, "")
		want("remove", a.RemoveMembers(ctx, g.ID, carol), "")
		_, err = c.Send(ctx, g.ID, "removed")
		want(fmt.Sprintf("round %d: carol's send right after she was removed", i), err, protocol.CodeNotMember)
	}
}
