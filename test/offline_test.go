package test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
)

func sdk(t testing.TB, user string, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Token = token(t, user)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestOfflineDeviceCatchesUpUnderTraffic: bob's device goes away, 1,000
// messages arrive, and it comes back (on the other edge, with its saved
// cursors) while alice keeps sending: it receives every message once, in
// order, with no gap.
func TestOfflineDeviceCatchesUpUnderTraffic(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, workers: 1})
	urls := []string{wsURL(m.edges[0]), wsURL(m.edges[1])}
	alice := sdk(t, "alice", client.Config{URLs: urls})
	bob := sdk(t, "bob", client.Config{URLs: urls})
	ctx := context.Background()
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := alice.Send(ctx, conv.ID, fmt.Sprint("m", i)); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}
	send(0, 10)
	got := make([]natter.Message, 0, 2000)
	recv := func(c *client.Client, n int) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for len(got) < n {
			select {
			case msg := <-c.Messages():
				if msg.Conv == conv.ID {
					got = append(got, msg)
				}
			case <-deadline:
				t.Fatalf("received %d of %d", len(got), n)
			}
		}
	}
	recv(bob, 10)
	cursors := bob.Cursors()
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}

	send(10, 1010) // bob is offline
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); send(1010, 1510) }() // and traffic goes on while he is back
	back := sdk(t, "bob", client.Config{URLs: []string{urls[1], urls[0]}, Cursors: cursors, FromStart: true})
	recv(back, 1510)
	wg.Wait()
	for i, msg := range got {
		if msg.Seq != uint64(i+1) || msg.Body != fmt.Sprint("m", i) {
			t.Fatalf("message %d: seq %d body %q", i, msg.Seq, msg.Body)
		}
	}
	select {
	case extra := <-back.Messages():
		t.Fatalf("extra message after all 1510: %+v", extra)
	default:
	}
	if st := back.Stats(); st.Synced == 0 {
		t.Fatalf("the catch-up did not come from sync: %+v", st)
	}
}
