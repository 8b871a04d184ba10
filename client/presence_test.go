package client_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
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

// TestPresenceSubscribedAfterSync: after a reconnect the client subscribes
// its watched users again only once its first sync has completed, so the
// sync is not queued behind the presence subscribe's authorisation on the
// edge (which answers a session's requests in order). Seen on NATS: for
// every client, the conversations service gets the sync's list request
// (ids) before the presence subscribe's (summaries).
func TestPresenceSubscribedAfterSync(t *testing.T) {
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	bob := uniq("bob")
	b := dial(t, []string{wsURL(dev)}, bob)
	defer b.Close()
	ctx := ctxT(t)
	var cs []*client.Client
	for range 8 {
		c := dial(t, []string{wsURL(edgeA), wsURL(dev)}, uniq("alice"))
		if _, err := c.CreateDirect(ctx, bob); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SubscribePresence(ctx, bob); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	nc, err := nats.Connect(dev.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type listReq struct {
		user string
		ids  bool
	}
	var mu sync.Mutex
	var seen []listReq
	sub, err := nc.Subscribe(subjects.ConvEndpoint(convapi.OpList), func(m *nats.Msg) {
		var r convapi.ListRequest
		if json.Unmarshal(m.Data, &r) == nil {
			mu.Lock()
			seen = append(seen, listReq{r.User, r.IDs})
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stopNode(t, edgeA)
	for _, c := range cs {
		nextPresence(t, c, bob, true) // the state subscribed again
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cs {
		first := map[bool]int{}
		for i, r := range seen {
			if _, ok := first[r.ids]; !ok && r.user == c.User() {
				first[r.ids] = i
			}
		}
		syncAt, ok1 := first[true]
		subAt, ok2 := first[false]
		if !ok1 || !ok2 || syncAt > subAt {
			t.Fatalf("%s: list requests after the reconnect %v: want the sync's (ids) before the presence subscribe's", c.User(), seen)
		}
	}
}
