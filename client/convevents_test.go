package client_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// nextConvEvent reads the next event of c's ConvEvents, failing after 20s.
func nextConvEvent(t testing.TB, c *client.Client) protocol.ConvFrame {
	t.Helper()
	select {
	case f, ok := <-c.ConvEvents():
		if !ok {
			t.Fatalf("%s: conv events closed (err %v)", c.User(), c.Err())
		}
		return f
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no conv event within 20s (stats %+v)", c.User(), c.Stats())
	}
	return protocol.ConvFrame{}
}

func wantConvEvent(t testing.TB, c *client.Client, want protocol.ConvFrame) {
	t.Helper()
	if got := nextConvEvent(t, c); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: conv event %+v, want %+v", c.User(), got, want)
	}
}

// TestConvEvents: the SDK hands the conv pushes to the application on
// ConvEvents (a group created with the user, a rename with Rename, a member
// change), on every device; a device that was offline while conversations
// changed is told after its reconnect what the pushes it missed would have
// told: removed for a group it was taken out of, added for a conversation
// created with it, changed (with the new rev) for a group renamed.
func TestConvEvents(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	var n netCtl
	a := dial(t, []string{wsURL(dev)}, alice)
	b1 := dial(t, []string{wsURL(dev)}, bob)
	b2 := dial(t, []string{wsURL(edgeA)}, bob, func(c *client.Config) { c.Dialer = n.dialer() })
	ctx := ctxT(t)

	g, err := a.CreateGroup(ctx, "Team", bob, carol)
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.CreateGroup(ctx, "Other", bob)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b1, b2} {
		wantConvEvent(t, c, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, By: alice, Created: true})
		wantConvEvent(t, c, protocol.ConvFrame{Conv: h.ID, Event: protocol.ConvAdded, By: alice, Created: true})
	}
	if err := b1.Rename(ctx, g.ID, "Team B"); protocol.CodeOf(err) != protocol.CodeForbidden { // a member
		t.Fatalf("a member's rename: %v, want forbidden", err)
	}
	if err := a.Rename(ctx, g.ID, "Team B"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b1, b2} {
		wantConvEvent(t, c, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRenamed, Rev: 1, By: alice, Name: "Team B"})
	}
	if err := a.Rename(ctx, g.ID, "Team B"); err != nil { // no change: no event
		t.Fatal(err)
	}

	// b2 goes offline; meanwhile carol and then bob leave g, h is renamed
	// and a new group is made with bob.
	n.offline.Store(true)
	n.cut()
	if err := a.RemoveMembers(ctx, g.ID, carol); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveMembers(ctx, g.ID, bob); err != nil {
		t.Fatal(err)
	}
	if err := a.Rename(ctx, h.ID, "Renamed"); err != nil {
		t.Fatal(err)
	}
	u, err := a.CreateGroup(ctx, "New", bob)
	if err != nil {
		t.Fatal(err)
	}
	wantConvEvent(t, b1, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersRemoved, Rev: 2, By: alice, Users: []string{carol}, N: 1, MemberCount: 2})
	wantConvEvent(t, b1, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRemoved, Rev: 3, By: alice})
	wantConvEvent(t, b1, protocol.ConvFrame{Conv: h.ID, Event: protocol.ConvRenamed, Rev: 1, By: alice, Name: "Renamed"})
	wantConvEvent(t, b1, protocol.ConvFrame{Conv: u.ID, Event: protocol.ConvAdded, By: alice, Created: true})

	n.offline.Store(false)
	got := map[string]protocol.ConvFrame{}
	for range 3 {
		f := nextConvEvent(t, b2)
		got[f.Conv] = f
	}
	want := map[string]protocol.ConvFrame{
		g.ID: {Conv: g.ID, Event: protocol.ConvRemoved, Rev: 1},
		h.ID: {Conv: h.ID, Event: client.ConvChanged, Rev: 1},
		u.ID: {Conv: u.ID, Event: protocol.ConvAdded},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events after the reconnect:\n got %+v\nwant %+v", got, want)
	}
	conv, err := b2.Conversation(ctx, h.ID)
	if err != nil || conv.Name != "Renamed" || conv.Rev != 1 {
		t.Fatalf("%s after changed: %+v (%v)", h.ID, conv, err)
	}
	if s := b2.Stats(); s.Reconnects == 0 || s.ConvEvents != 6 {
		t.Fatalf("b2 stats %+v: want a reconnect and 6 conv events", s)
	}
}
