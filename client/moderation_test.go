package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// TestGroupModeration runs the group roles through real edges and devices:
// the owner appoints an admin, the admin mutes a member and turns on
// announcement mode, the owner hands ownership on; every device gets each
// change as a conv event with the group's rev; forged attempts (a member
// removing another, a muted member's send, a member's send in announcement
// mode) get forbidden and store nothing, although the edge that refuses
// the send had the group's members cached from before the change.
func TestGroupModeration(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	alice, bob, carol, dave := uniq("alice"), uniq("bob"), uniq("carol"), uniq("dave")
	a := dial(t, []string{wsURL(dev)}, alice)
	b1 := dial(t, []string{wsURL(dev)}, bob)
	b2 := dial(t, []string{wsURL(edgeA)}, bob)
	c := dial(t, []string{wsURL(edgeA)}, carol)
	d := dial(t, []string{wsURL(edgeA)}, dave)
	all := []*client.Client{a, b1, b2, c, d}
	ctx := ctxT(t)

	g, err := a.CreateGroup(ctx, "Team", bob, carol, dave)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range all {
		wantConvEvent(t, cl, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, By: alice, Created: true})
	}
	// dave and carol send once: edge A has the group's members cached.
	if _, err := d.Send(ctx, g.ID, "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, g.ID, "before too"); err != nil {
		t.Fatal(err)
	}

	// A member removing another: forbidden, nothing changes.
	if err := d.RemoveMembers(ctx, g.ID, carol); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("a member removing another: %v, want forbidden", err)
	}
	if err := b1.AddAdmins(ctx, g.ID, bob); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("a member appointing themselves: %v, want forbidden", err)
	}

	if err := a.AddAdmins(ctx, g.ID, bob); err != nil {
		t.Fatal(err)
	}
	for _, cl := range all {
		wantConvEvent(t, cl, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRoles, Rev: 1, By: alice, Owner: alice, Admins: []string{bob}})
	}
	if err := b2.Mute(ctx, g.ID, time.Hour, dave); err != nil {
		t.Fatal(err)
	}
	var until int64
	for _, cl := range all {
		f := nextConvEvent(t, cl)
		until = f.Until
		if want := (protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMuted, Rev: 2, By: bob, Users: []string{dave}, N: 1, Until: until}); !equalFrame(f, want) || until < time.Now().Add(59*time.Minute).UnixMilli() {
			t.Fatalf("%s: %+v, want %+v ending in an hour", cl.User(), f, want)
		}
	}
	refused := sendRefused(t, d, g.ID, "muted")

	on := true
	if err := b1.UpdateGroup(ctx, g.ID, client.GroupUpdate{Announce: &on}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range all {
		wantConvEvent(t, cl, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvUpdated, Rev: 3, By: bob, Announce: true})
	}
	refused = append(refused, sendRefused(t, c, g.ID, "announcement mode")...)
	if _, err := b2.Send(ctx, g.ID, "from an admin"); err != nil {
		t.Fatalf("an admin's send in announcement mode: %v", err)
	}

	if err := a.TransferOwner(ctx, g.ID, carol); err != nil {
		t.Fatal(err)
	}
	for _, cl := range all {
		wantConvEvent(t, cl, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRoles, Rev: 4, By: alice, Owner: carol, Admins: []string{alice, bob}})
	}
	if _, err := c.Send(ctx, g.ID, "from the owner"); err != nil {
		t.Fatalf("the new owner's send: %v", err)
	}
	conv, err := d.Conversation(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if conv.Owner != carol || !slices.Equal(conv.Admins, slices.Sorted(slices.Values([]string{alice, bob}))) || !conv.Announce ||
		conv.Rev != 4 || len(conv.Muted) != 1 || conv.Muted[0] != (natter.Mute{User: dave, Until: until}) {
		t.Fatalf("conv.get %+v", conv)
	}

	// Nothing of the refused sends is stored: the log has the four sends
	// that were accepted, and none of the refused cmids.
	msgs, _, err := a.History(ctx, g.ID, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Body)
		if slices.Contains(refused, m.Cmid) {
			t.Fatalf("refused send %s stored as seq %d", m.Cmid, m.Seq)
		}
	}
	if want := []string{"before", "before too", "from an admin", "from the owner"}; !slices.Equal(got, want) {
		t.Fatalf("history %q, want %q", got, want)
	}
}

func equalFrame(a, b protocol.ConvFrame) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// sendRefused sends once from cl, which must get forbidden, and returns the
// cmid it used. The change was pushed to cl's device already: its edge
// received the change notice (which drops the group from its member cache)
// before that push, as the service publishes the notice first on the same
// connection.
func sendRefused(t *testing.T, cl *client.Client, conv, why string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmid := uniq("refused")
	_, err := cl.Send(ctx, conv, "refused: "+why, client.WithCmid(cmid))
	if protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("%s's send (%s): %v, want forbidden", cl.User(), why, err)
	}
	return []string{cmid}
}
