package client_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestSyncBeforeHeldSends: the sends a client holds while its edge is down
// go once the new connection's first sync has completed, so that the sync
// (one request among them on a socket the edge answers in order) is not
// queued behind their appends: in a reconnect storm a sender's resume
// waited for seconds of appends. Seen on NATS, on one subscription: the
// sync's list request comes before the first append of a held send.
func TestSyncBeforeHeldSends(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	edgeA := startEdge(t, dev, "127.0.0.1:0")
	addr := edgeA.Addr()
	alice, bob := uniq("alice"), uniq("bob")
	a := dial(t, []string{wsURL(edgeA)}, alice)
	ctx := ctxT(t)
	conv, err := a.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}

	nc := testenv.Connect(t, dev.NATSURL())
	ch := make(chan *nats.Msg, 1024)
	for _, subj := range []string{subjects.ConvEndpoint(convapi.OpList), subjects.Msg(conv.ID)} {
		sub, err := nc.ChanSubscribe(subj, ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	stopNode(t, edgeA)
	const sends = 20
	var wg sync.WaitGroup
	errs := make(chan error, sends)
	for range sends {
		wg.Go(func() {
			if _, err := a.Send(ctx, conv.ID, "held"); err != nil {
				errs <- err
			}
		})
	}
	startEdge(t, dev, addr)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The first of alice's list requests (her sync's, ids only) and the
	// first append, in the order the server sent them here.
	synced := false
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Subject == subjects.Msg(conv.ID) {
				if !synced {
					t.Fatalf("a held send was appended before the new connection's sync asked for the list")
				}
				return
			}
			var r convapi.ListRequest
			if json.Unmarshal(m.Data, &r) == nil && r.User == alice && r.IDs {
				synced = true
			}
		case <-deadline:
			t.Fatal("no append seen")
		}
	}
}
