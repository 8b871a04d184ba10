package client_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/testenv"
)

// TestRevokedAndBanned: a client whose token is revoked (close 4003) gets
// a new one from its TokenFunc and goes on; one without a TokenFunc stops
// with token_revoked; a banned user's client (close 4004) stops with
// banned, and a banned user cannot dial.
func TestRevokedAndBanned(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	js := testenv.JetStream(t, testenv.Connect(t, dev.NATSURL()))
	w := revoke.NewWriter(js, time.Hour)
	ctx := ctxT(t)
	mint := func(user, jti string) string {
		tok, err := auth.Mint(testKey, nil, auth.MintClaims{User: user, ID: jti, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob, carol := uniq("alice"), uniq("bob"), uniq("carol")
	var calls atomic.Int32
	a := dial(t, url, alice, func(c *client.Config) {
		c.Token = ""
		c.TokenFunc = func(context.Context) (string, error) {
			return mint(alice, fmt.Sprint(alice, "-", calls.Add(1))), nil
		}
	})
	b := dial(t, url, bob, func(c *client.Config) { c.Token = mint(bob, bob+"-1") })
	c := dial(t, url, carol)

	if _, err := w.RevokeToken(ctx, alice+"-1", time.Time{}, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RevokeToken(ctx, bob+"-1", time.Time{}, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Ban(ctx, carol, "spam", time.Time{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		c    *client.Client
		code protocol.Code
	}{"bob": {b, protocol.CodeTokenRevoked}, "carol": {c, protocol.CodeBanned}} {
		select {
		case <-tc.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: client still running", name)
		}
		if got := protocol.CodeOf(tc.c.Err()); got != tc.code {
			t.Fatalf("%s: Err %v, want code %s", name, tc.c.Err(), tc.code)
		}
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if s := a.Stats(); s.Reconnects == 0 || calls.Load() < 2 {
			return fmt.Errorf("alice: %d reconnects, %d tokens", s.Reconnects, calls.Load())
		}
		return nil
	})
	if _, _, err := a.Ping(ctx); err != nil {
		t.Fatalf("alice after the revocation: %v", err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Dial(dctx, client.Config{URLs: url, Token: token(t, carol)}); protocol.CodeOf(err) != protocol.CodeBanned {
		t.Fatalf("banned dial: %v, want code banned", err)
	}
}
