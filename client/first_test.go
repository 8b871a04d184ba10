package client_test

import (
	"testing"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// TestSendMarksFirstAttempt reads the send frames the client writes to a
// real edge: only the first frame of a cmid Send made itself carries
// first=true; the resend after a connection cut before the ack does not
// (and gets the original back as a duplicate), nor does a send with
// WithCmid. Every message is stored once.
func TestSendMarksFirstAttempt(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	alice, bob := uniq("alice"), uniq("bob")
	var n netCtl
	a := dial(t, []string{wsURL(dev)}, alice, func(c *client.Config) { c.Dialer = n.dialer() })
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.ID, "one"); err != nil {
		t.Fatal(err)
	}
	// Cut the connection when the ack of the next send arrives: the message
	// is stored, but the client never hears so and sends it again.
	cut := []byte(`"data":{"id":"m_`)
	n.cutOn.Store(&cut)
	two, err := a.Send(ctx, conv.ID, "two")
	if err != nil {
		t.Fatal(err)
	}
	if n.cutOn.Load() != nil {
		t.Fatal("the connection was not cut")
	}
	if !two.Dup || two.Seq != 2 {
		t.Fatalf("ack of the resend: %+v (want a duplicate of seq 2)", two)
	}
	mine := uniq("mine")
	if _, err := a.Send(ctx, conv.ID, "three", client.WithCmid(mine)); err != nil {
		t.Fatal(err)
	}

	byBody := map[string][]protocol.Request{}
	for _, r := range n.sends() {
		byBody[r.Body] = append(byBody[r.Body], r)
	}
	if f := byBody["one"]; len(f) != 1 || !f[0].First {
		t.Fatalf("frames of one: %+v, want one with first", f)
	}
	f := byBody["two"]
	if len(f) < 2 || !f[0].First {
		t.Fatalf("frames of two: %+v, want the first attempt with first, then resends", f)
	}
	for _, r := range f[1:] {
		if r.First || r.Cmid != f[0].Cmid {
			t.Fatalf("resend of two: %+v, want cmid %s without first", r, f[0].Cmid)
		}
	}
	if f := byBody["three"]; len(f) != 1 || f[0].First || f[0].Cmid != mine {
		t.Fatalf("frames of three: %+v, want one with cmid %s, without first", f, mine)
	}

	page, _, err := a.History(ctx, conv.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, page, conv.ID, 1, []string{"one", "two", "three"})
	if len(page) != 3 {
		t.Fatalf("history has %d messages, want 3", len(page))
	}
}
