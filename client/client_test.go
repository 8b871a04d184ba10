package client_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

func TestDirectSendReceive(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob)
	if a.User() != alice || b.User() != bob {
		t.Fatalf("users %q %q", a.User(), b.User())
	}
	ctx := ctxT(t)

	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if conv.ID != natter.DirectID(alice, bob) || conv.Kind != natter.KindDirect {
		t.Fatalf("conversation %+v", conv)
	}
	want := bodies("hello", 5)
	for i, body := range want {
		ack, err := a.Send(ctx, conv.ID, body)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Seq != uint64(i+1) || ack.Dup || ack.Conv != conv.ID {
			t.Fatalf("ack %d: %+v", i, ack)
		}
	}
	// Both ends get every message once, in order; the sender too.
	checkSeqs(t, recv(t, b, 5), conv.ID, 1, want)
	checkSeqs(t, recv(t, a, 5), conv.ID, 1, want)
	quiet(t, b, 200*time.Millisecond)

	if got := b.Cursors()[conv.ID]; got != 5 {
		t.Fatalf("bob's cursor %d, want 5", got)
	}
	page, more, err := b.History(ctx, conv.ID, 0, 2)
	if err != nil || !more || len(page) != 2 || page[1].Seq != 5 {
		t.Fatalf("newest page: %v %v %+v", err, more, page)
	}
	page, more, err = b.HistoryAfter(ctx, conv.ID, 0, 3)
	if err != nil || !more || len(page) != 3 {
		t.Fatalf("first page: %v %v %+v", err, more, page)
	}
	checkSeqs(t, page, conv.ID, 1, want[:3])
	page, more, err = b.HistoryAfter(ctx, conv.ID, 3, 10)
	if err != nil || more || len(page) != 2 {
		t.Fatalf("page after 3: %v %v %+v", err, more, page)
	}
	checkSeqs(t, page, conv.ID, 4, want[3:])
	if err := b.MarkRead(ctx, conv.ID, 5); err != nil {
		t.Fatal(err)
	}
	members, err := b.Members(ctx, conv.ID)
	if err != nil || len(members) != 2 {
		t.Fatalf("members %v %v", members, err)
	}
	convs, err := b.Conversations(ctx)
	if err != nil || len(convs) != 1 || convs[0].ID != conv.ID || convs[0].Head != 5 {
		t.Fatalf("conversations %+v %v", convs, err)
	}
	if _, _, err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Acks report the delivered cursor to the edge.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := b.Stats(); s.Acks == 0 {
			return fmt.Errorf("no acks yet: %+v", s)
		}
		return nil
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	a := dial(t, url, alice)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, url, carol)

	_, err = c.Send(ctx, conv.ID, "not mine")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != protocol.CodeNotMember || ce.Op != protocol.OpSend {
		t.Fatalf("send to a foreign conversation: %v", err)
	}
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeNotMember}) || protocol.CodeOf(err) != protocol.CodeNotMember {
		t.Fatalf("not a protocol not_member: %v", err)
	}
	if _, err := a.Send(ctx, conv.ID, ""); protocol.CodeOf(err) != protocol.CodeBadFrame {
		t.Fatalf("empty body: %v", err)
	}
	if _, err := a.Send(ctx, conv.ID, string(make([]byte, protocol.DefaultMaxBody+1))); protocol.CodeOf(err) != protocol.CodeTooBig {
		t.Fatalf("big body: %v", err)
	}
	if err := a.AddMembers(ctx, conv.ID, carol); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("add to a direct conversation: %v", err)
	}
	// The connection survived all of it.
	if _, err := a.Send(ctx, conv.ID, "still here"); err != nil {
		t.Fatal(err)
	}

	// A bad token is refused at once.
	_, err = client.Dial(ctx, client.Config{URLs: url, Token: "not-a-token"})
	if protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("dial with a bad token: %v", err)
	}
	if _, err := client.Dial(ctx, client.Config{Token: "x"}); err == nil {
		t.Fatal("dial without URLs succeeded")
	}

	// After Close, calls fail and Messages is closed.
	_ = c.Close()
	if _, err := c.Send(ctx, conv.ID, "late"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Fatal("messages open after close")
	}
	if c.Err() != nil {
		t.Fatalf("Err after a plain close: %v", c.Err())
	}
	_ = c.Close()
}

func TestTwoDevices(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b1 := dial(t, url, bob, func(c *client.Config) { c.Device = "phone" })
	b2 := dial(t, url, bob, func(c *client.Config) { c.Device = "laptop" })
	if b1.Device() != "phone" || b2.Device() != "laptop" {
		t.Fatalf("devices %q %q", b1.Device(), b2.Device())
	}
	ctx := ctxT(t)
	g, err := a.CreateGroup(ctx, "team", bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bodies("to both", 30)
	for _, body := range want {
		if _, err := a.Send(ctx, g.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	// bob answers from one device; both see it.
	if _, err := b1.Send(ctx, g.ID, "from the phone"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "from the phone")
	for _, b := range []*client.Client{b1, b2} {
		checkSeqs(t, recv(t, b, len(want)), g.ID, 1, want)
		quiet(t, b, 100*time.Millisecond)
	}
}

func TestDialStartingPoints(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bodies("old", 6)
	for _, body := range want[:5] {
		if _, err := a.Send(ctx, conv.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	atHead := dial(t, url, bob)
	fromStart := dial(t, url, bob, func(c *client.Config) { c.FromStart = true })
	resumed := dial(t, url, bob, func(c *client.Config) { c.Cursors = map[string]uint64{conv.ID: 3} })
	if got := atHead.Cursors()[conv.ID]; got != 5 {
		t.Fatalf("cursor at head: %d", got)
	}
	if _, err := a.Send(ctx, conv.ID, want[5]); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, recv(t, atHead, 1), conv.ID, 6, want[5:])
	checkSeqs(t, recv(t, fromStart, 6), conv.ID, 1, want)
	checkSeqs(t, recv(t, resumed, 3), conv.ID, 4, want[3:])
	for _, c := range []*client.Client{atHead, fromStart, resumed} {
		quiet(t, c, 100*time.Millisecond)
	}
}

// TestOwnEntriesFromAcks: the edge does not push an entry to the connection
// that appended it; the client delivers its own sends, edits and deletes
// from their acks, once, in seq order, each equal to the push the other
// members get. A push of its own entry (an echo) would show in Pushes.
func TestOwnEntriesFromAcks(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, url, alice)
	b := dial(t, url, bob)
	ctx := ctxT(t)
	g, err := a.CreateGroup(ctx, "own", bob)
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Send(ctx, g.ID, "plain")
	if err != nil {
		t.Fatal(err)
	}
	// Bob has the group (a sync of it would return the first message as
	// edited, then deleted: pages apply the actions): the rest come as
	// pushes.
	theirs := recv(t, b, 1)
	sends := []func() (natter.Ack, error){
		func() (natter.Ack, error) { return a.Send(ctx, g.ID, "typed", client.WithType("note")) },
		func() (natter.Ack, error) {
			return a.Send(ctx, g.ID, "to bob", client.WithMentions(bob), client.WithReplyTo(first.ID))
		},
		func() (natter.Ack, error) { return a.Send(ctx, g.ID, "in a thread", client.WithThread(first.ID)) },
		func() (natter.Ack, error) { return a.Edit(ctx, g.ID, first.ID, "plain, edited") },
		func() (natter.Ack, error) { return a.Delete(ctx, g.ID, first.ID) },
	}
	for i, send := range sends {
		if ack, err := send(); err != nil || ack.Seq != uint64(i+2) {
			t.Fatalf("append %d: %+v %v", i, ack, err)
		}
	}
	n := len(sends) + 1
	mine := recv(t, a, n)
	theirs = append(theirs, recv(t, b, n-1)...)
	for i := range mine {
		if !reflect.DeepEqual(mine[i], theirs[i]) {
			t.Errorf("seq %d: the sender has\n%+v\nthe push is\n%+v", i+1, mine[i], theirs[i])
		}
	}
	quiet(t, a, 200*time.Millisecond)
	if s := a.Stats(); s.Pushes != 0 || s.Duplicates != 0 || s.Delivered != uint64(n) {
		t.Fatalf("sender's stats %+v: want no push, no duplicate, %d delivered", s, n)
	}
}
