package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

func TestSendRetrySameCmid(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	var n netCtl
	a := dial(t, url, alice, func(c *client.Config) { c.Dialer = n.dialer() })
	b := dial(t, url, bob)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.ID, "first"); err != nil {
		t.Fatal(err)
	}
	// Cut the connection when the ack of the next send arrives: the message
	// is stored, but alice never hears so.
	cut := []byte(`"data":{"id":"m_`)
	n.cutOn.Store(&cut)
	ack, err := a.Send(ctx, conv.ID, "second", client.WithCmid("retry-me"))
	if err != nil {
		t.Fatal(err)
	}
	if n.cutOn.Load() != nil {
		t.Fatal("the connection was not cut")
	}
	if !ack.Dup || ack.Seq != 2 {
		t.Fatalf("ack after the retry: %+v (want dup of seq 2)", ack)
	}
	if s := a.Stats(); s.SendRetries == 0 || s.Reconnects == 0 {
		t.Fatalf("stats %+v", s)
	}
	again, err := a.Send(ctx, conv.ID, "second", client.WithCmid("retry-me"))
	if err != nil || again.Seq != 2 || again.ID != ack.ID || !again.Dup {
		t.Fatalf("explicit retry: %+v %v", again, err)
	}
	if _, err := a.Send(ctx, conv.ID, "third"); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, recv(t, b, 3), conv.ID, 1, []string{"first", "second", "third"})
	quiet(t, b, 200*time.Millisecond)
	checkSeqs(t, recv(t, a, 3), conv.ID, 1, []string{"first", "second", "third"})
	page, _, err := b.History(ctx, conv.ID, 0, 10)
	if err != nil || len(page) != 3 || page[1].Cmid != "retry-me" {
		t.Fatalf("history %+v %v", page, err)
	}
}

func TestReconnectToAnotherEdge(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	addrB := freeAddr(t)
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, []string{wsURL(dev)}, alice)
	b := dial(t, []string{wsURL(edgeA), "ws://" + addrB + protocol.Path}, bob)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bodies("msg", 120)
	send := func(from, to int) {
		for _, body := range want[from:to] {
			if _, err := a.Send(ctx, conv.ID, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 10)
	checkSeqs(t, recv(t, b, 10), conv.ID, 1, want[:10])

	stopNode(t, edgeA)
	send(10, 60) // bob has no edge now
	startEdge(t, dev, addrB)
	got := recv(t, b, 50)
	checkSeqs(t, got, conv.ID, 11, want[10:60])
	send(60, 120) // live again
	checkSeqs(t, recv(t, b, 60), conv.ID, 61, want[60:])
	quiet(t, b, 200*time.Millisecond)
	if s := b.Stats(); s.Reconnects == 0 || s.Synced < 50 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	ctx := ctxT(t)

	// JWT times are whole seconds: a 2s token lives at least 1s.
	mint := func(user string) string {
		tok, err := auth.Mint(testKey, nil, auth.MintClaims{User: user, TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var calls atomic.Int32
	a := dial(t, url, alice, func(c *client.Config) {
		c.Token = ""
		c.TokenFunc = func(context.Context) (string, error) { calls.Add(1); return mint(alice), nil }
	})
	b := dial(t, url, bob, func(c *client.Config) { c.Token = mint(bob) })
	errIdP := errors.New("identity provider down")
	var carolCalls atomic.Int32
	carolID := uniq("carol")
	carol := dial(t, url, carolID, func(c *client.Config) {
		c.Token = ""
		c.TokenFunc = func(context.Context) (string, error) {
			if carolCalls.Add(1) > 1 {
				return "", errIdP
			}
			return mint(carolID), nil
		}
	})

	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client with an expired token still running")
	}
	if protocol.CodeOf(b.Err()) != protocol.CodeUnauthorized {
		t.Fatalf("Err: %v", b.Err())
	}
	if _, ok := <-b.Messages(); ok {
		t.Fatal("messages open after a fatal error")
	}
	// carol's token expires and her TokenFunc fails: she stops too.
	select {
	case <-carol.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client with a failing TokenFunc still running")
	}
	if !errors.Is(carol.Err(), errIdP) {
		t.Fatalf("carol: %v", carol.Err())
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := a.Stats(); s.Reconnects == 0 {
			return fmt.Errorf("no reconnect yet (%d token calls)", calls.Load())
		}
		return nil
	})
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.ID, "still here"); err != nil {
		t.Fatal(err)
	}
	if a.Err() != nil || calls.Load() < 2 {
		t.Fatalf("err %v, %d token calls", a.Err(), calls.Load())
	}
}

func TestSilentConnection(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	ec.PingInterval = 200 * time.Millisecond
	dev := startNode(t, node.Config{Mode: node.ModeDev, DataDir: t.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", Edge: ec})
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
	n.stall()
	// Keep the edge hearing from bob, so that it is bob's client that must
	// notice the silence (the edge would close a silent socket too).
	go func() {
		for ctx.Err() == nil && b.Stats().Reconnects == 0 {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _, _ = b.Ping(pctx)
			cancel()
		}
	}()
	want := bodies("m", 20)
	for _, body := range want {
		if _, err := a.Send(ctx, conv.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	checkSeqs(t, recv(t, b, 20), conv.ID, 1, want)
	quiet(t, b, 100*time.Millisecond)
	if s := b.Stats(); s.Reconnects == 0 {
		t.Fatalf("stats %+v", s)
	}
}
