package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

func TestGapsAndDuplicates(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var n netCtl
	n.setPush(func(m natter.Message) int {
		switch {
		case m.Seq >= 3 && m.Seq <= 150:
			return 0 // lost
		case m.Seq > 150 && m.Seq%2 == 0:
			return 2 // delivered twice
		}
		return 1
	})
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(c *client.Config) { c.Dialer = n.dialer() })
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bodies("m", 200)
	for _, body := range want {
		if _, err := a.Send(ctx, conv.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	checkSeqs(t, recv(t, b, 200), conv.ID, 1, want)
	quiet(t, b, 200*time.Millisecond)
	s := b.Stats()
	if s.Reconnects != 0 || s.Gaps == 0 || s.Synced < 148 || s.Duplicates < 25 || s.Delivered != 200 {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("stats %+v", s)
}

func TestOfflineResync(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var n netCtl
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(c *client.Config) { c.Dialer = n.dialer() })
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.ID, "before"); err != nil {
		t.Fatal(err)
	}
	recv(t, b, 1)

	n.offline.Store(true)
	if n.cut() == 0 {
		t.Fatal("no connection to cut")
	}
	want := bodies("while away", 200)
	for _, body := range want {
		if _, err := a.Send(ctx, conv.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	g, err := a.CreateGroup(ctx, "new", bob)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"g1", "g2", "g3"} {
		if _, err := a.Send(ctx, g.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	n.offline.Store(false)

	got := recv(t, b, 203)
	var direct, group []natter.Message
	for _, m := range got {
		if m.Conv == g.ID {
			group = append(group, m)
		} else {
			direct = append(direct, m)
		}
	}
	checkSeqs(t, direct, conv.ID, 2, want)
	checkSeqs(t, group, g.ID, 1, []string{"g1", "g2", "g3"})
	quiet(t, b, 200*time.Millisecond)
	cur := b.Cursors()
	if cur[conv.ID] != 201 || cur[g.ID] != 3 {
		t.Fatalf("cursors %v", cur)
	}
}

func TestSlowApplication(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(c *client.Config) { c.Buffer = 1; c.MaxPending = 20 })
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bodies("m", 300)
	for _, body := range want {
		if _, err := a.Send(ctx, conv.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	checkSeqs(t, recv(t, b, 300), conv.ID, 1, want)
	quiet(t, b, 100*time.Millisecond)
}

// Exactly once and in order while both ends keep losing their connections
// under live traffic in two conversations: whenever bob has received
// another 60 messages his socket is cut, and every other time alice's too
// (wherever her sends are).
func TestChurn(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var na, nb netCtl
	a := dial(t, url, alice, func(c *client.Config) { c.Dialer = na.dialer() })
	b := dial(t, url, bob, func(c *client.Config) { c.Dialer = nb.dialer() })
	ctx := ctxT(t)
	direct, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	group, err := a.CreateGroup(ctx, "churn", bob)
	if err != nil {
		t.Fatal(err)
	}
	const perConv = 200
	want := bodies("m", perConv)
	errs := make(chan error, 1)
	go func() {
		for i := range perConv {
			for _, conv := range []string{direct.ID, group.ID} {
				if _, err := a.Send(ctx, conv, want[i]); err != nil {
					errs <- err
					return
				}
			}
		}
		errs <- nil
	}()
	got := map[string][]natter.Message{}
	for n := 1; n <= 2*perConv; n++ {
		m := recv(t, b, 1)[0]
		got[m.Conv] = append(got[m.Conv], m)
		if n%60 == 0 {
			nb.cut()
			if n%120 == 0 {
				na.cut()
			}
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, got[direct.ID], direct.ID, 1, want)
	checkSeqs(t, got[group.ID], group.ID, 1, want)
	quiet(t, b, 200*time.Millisecond)
	sa, sb := a.Stats(), b.Stats()
	if sa.Reconnects == 0 || sb.Reconnects == 0 {
		t.Fatalf("stats alice %+v bob %+v", sa, sb)
	}
	t.Logf("alice %+v", sa)
	t.Logf("bob %+v", sb)
}

// A conversation the user has left disappears from the cursors at the next
// sync.
func TestLeftConversation(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var n netCtl
	a := dial(t, url, alice)
	b := dial(t, url, bob, func(c *client.Config) { c.Dialer = n.dialer() })
	ctx := ctxT(t)
	g, err := a.CreateGroup(ctx, "short", bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, g.ID, "hi"); err != nil {
		t.Fatal(err)
	}
	recv(t, b, 1)
	if err := b.RemoveMembers(ctx, g.ID, bob); err != nil {
		t.Fatal(err)
	}
	n.cut() // the sync after the reconnect names the group
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if cur, ok := b.Cursors()[g.ID]; ok {
			return fmt.Errorf("group still in the cursors at %d (stats %+v)", cur, b.Stats())
		}
		return nil
	})
	if _, err := b.Send(ctx, g.ID, "gone"); protocol.CodeOf(err) != protocol.CodeNotMember {
		t.Fatalf("send after leaving: %v", err)
	}
}
