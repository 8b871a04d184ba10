package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// nextPresence reads presence events of c until one for user with the
// given online state comes (others are passed over), failing after 20s.
func nextPresence(t testing.TB, c *client.Client, user string, online bool) protocol.PresenceState {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case st, ok := <-c.PresenceEvents():
			if !ok {
				t.Fatalf("%s: presence events closed (err %v)", c.User(), c.Err())
			}
			if st.User == user && st.Online == online {
				return st
			}
		case <-timeout.C:
			t.Fatalf("%s: no presence event %s online=%v within 20s (stats %+v)", c.User(), user, online, c.Stats())
		}
	}
}

// TestPresenceAndTyping: the SDK's presence.sub answers the current state
// and delivers changes on PresenceEvents; a user who shares no
// conversation is refused with forbidden; typing reaches the other member
// on TypingEvents and not the typer; a second typing signal past the
// burst is rate_limited at once.
func TestPresenceAndTyping(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	a := dial(t, urls, alice)
	b := dial(t, urls, bob)
	dial(t, urls, carol)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := a.SubscribePresence(ctx, bob)
	if err != nil || len(sts) != 1 || sts[0].User != bob || !sts[0].Online {
		t.Fatalf("subscribe %s: %+v, %v; want online", bob, sts, err)
	}
	_, err = a.SubscribePresence(ctx, bob, carol)
	if !errors.Is(err, &client.Error{Code: protocol.CodeForbidden}) {
		t.Fatalf("subscribe %s (no conversation shared): %v, want forbidden", carol, err)
	}

	if err := b.SetTyping(ctx, conv.ID, true); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-a.TypingEvents():
		if f.Conv != conv.ID || f.User != bob || f.State != protocol.TypingStarted || f.ExpiresMS != protocol.TypingExpiresMS {
			t.Fatalf("typing event %+v", f)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no typing event (stats %+v)", a.Stats())
	}
	var rl error
	for i := 0; i < 10 && rl == nil; i++ { // burst 3, then 1 per second
		rl = b.SetTyping(ctx, conv.ID, false)
	}
	if !errors.Is(rl, &client.Error{Code: protocol.CodeRateLimited}) {
		t.Fatalf("typing past the burst: %v, want rate_limited", rl)
	}
	if n := b.Stats().Typing; n != 0 {
		t.Errorf("the typer got %d typing events of its own", n)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if st := nextPresence(t, a, bob, false); st.LastSeen == 0 {
		t.Errorf("offline event without last_seen: %+v", st)
	}
	if err := a.UnsubscribePresence(ctx, bob); err != nil {
		t.Fatal(err)
	}
	dial(t, urls, bob)
	select {
	case st := <-a.PresenceEvents():
		t.Fatalf("presence event after unsubscribe: %+v", st)
	case <-time.After(500 * time.Millisecond): // a deadline, not synchronisation
	}
}

// TestPresenceResubscribedAfterReconnect: watches end with a connection,
// so the SDK subscribes its watched users again on the next one: the
// watcher's edge goes away, the client reconnects to another edge, gets
// the current state and then the later change.
func TestPresenceResubscribedAfterReconnect(t *testing.T) {
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, []string{wsURL(edgeA), wsURL(dev)}, alice)
	b := dial(t, []string{wsURL(dev)}, bob)
	ctx := ctxT(t)
	if _, err := a.CreateDirect(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SubscribePresence(ctx, bob); err != nil {
		t.Fatal(err)
	}
	stopNode(t, edgeA)
	nextPresence(t, a, bob, true) // the state subscribed again
	if st := a.Stats(); st.Reconnects == 0 {
		t.Fatalf("no reconnect: %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	nextPresence(t, a, bob, false)
}
