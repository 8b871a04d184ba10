package client_test

import (
	"slices"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// TestConvSettings: alice sets her settings of a conversation on one
// device: her other device (on another edge) is pushed them; conv.list
// and sync carry them; "clear history for me" hides the cleared messages
// from alice only (history, and a new device syncing from the start gets
// only what came after, without stalling), never from bob.
func TestConvSettings(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	alice, bob := uniq("alice"), uniq("bob")
	a1 := dial(t, []string{wsURL(dev)}, alice)
	a2 := dial(t, []string{wsURL(edgeA)}, alice)
	b := dial(t, []string{wsURL(dev)}, bob)
	ctx := ctxT(t)
	d, err := a1.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a1, a2} {
		nextConvEvent(t, c) // added
	}
	for _, body := range []string{"one", "two", "three"} {
		if _, err := b.Send(ctx, d.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, a1, 3)
	recv(t, a2, 3)

	yes, cleared := true, uint64(3)
	until := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	if _, err := a1.SetConvSettings(ctx, d.ID, client.ConvSettingsUpdate{Cleared: protocol.Seq(99)}); protocol.CodeOf(err) != protocol.CodeBadFrame {
		t.Fatalf("clearing past the head: %v, want bad_frame", err)
	}
	got, err := a1.SetConvSettings(ctx, d.ID, client.ConvSettingsUpdate{Pinned: &yes, Archived: &yes, MutedUntil: &until, Cleared: &cleared})
	want := natter.ConvSettings{MutedUntil: until.UnixMilli(), Pinned: true, Archived: true, Cleared: 3}
	if err != nil || got != want {
		t.Fatalf("settings %+v (%v), want %+v", got, err, want)
	}
	for _, c := range []*client.Client{a1, a2} {
		f := nextConvEvent(t, c)
		if f.Event != protocol.ConvSettings || f.Conv != d.ID || f.Settings == nil || *f.Settings != want {
			t.Fatalf("%s: settings push %+v", c.User(), f)
		}
	}
	convs, err := a2.Conversations(ctx)
	if err != nil || len(convs) != 1 || convs[0].Settings == nil || *convs[0].Settings != want || convs[0].Unread != 0 {
		t.Fatalf("alice's conv.list %+v (%v)", convs, err)
	}
	if convs, err := b.Conversations(ctx); err != nil || convs[0].Settings != nil {
		t.Fatalf("bob's conv.list %+v (%v): alice's settings are hers", convs, err)
	}
	if msgs, more, err := a2.History(ctx, d.ID, 0, 50); err != nil || len(msgs) != 0 || more {
		t.Fatalf("alice's history after the clear: %d messages, more %v (%v)", len(msgs), more, err)
	}
	if msgs, _, err := b.History(ctx, d.ID, 0, 50); err != nil || len(msgs) != 3 {
		t.Fatalf("bob's history: %d messages (%v), want 3", len(msgs), err)
	}
	if _, err := b.Send(ctx, d.ID, "four"); err != nil {
		t.Fatal(err)
	}
	if msgs, _, err := a1.HistoryAfter(ctx, d.ID, 0, 50); err != nil || len(msgs) != 1 || msgs[0].Seq != 4 {
		t.Fatalf("alice's history after 0: %+v (%v), want seq 4 only", msgs, err)
	}
	// A new device of alice that syncs every conversation from the start
	// gets seq 4 only, and goes on with seq 5.
	a3 := dial(t, []string{wsURL(edgeA)}, alice, func(c *client.Config) { c.FromStart = true })
	m := recv(t, a3, 1)
	if m[0].Seq != 4 || m[0].Body != "four" {
		t.Fatalf("alice's new device got %+v first, want seq 4", m[0])
	}
	if _, err := b.Send(ctx, d.ID, "five"); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, a3, 1); m[0].Seq != 5 {
		t.Fatalf("then %+v, want seq 5", m[0])
	}
	no := false
	if got, err := a2.SetConvSettings(ctx, d.ID, client.ConvSettingsUpdate{Archived: &no, Cleared: protocol.Seq(1)}); err != nil || got.Archived || got.Cleared != 3 || !slices.Contains([]bool{got.Pinned}, true) {
		t.Fatalf("unarchive with a lower cleared: %+v (%v): archived off, cleared stays 3", got, err)
	}
}
