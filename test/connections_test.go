package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// TestConsumersHaveTheirOwnConnection: in natter dev, where the edge and
// every role share one process, the roles' durable consumers take their
// batches on a connection of their own (natter-dev-consumers), not on the
// one that carries the sends' JetStream acks: each logged message reaches
// the persist, fan-out and events consumers there.
func TestConsumersHaveTheirOwnConnection(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	dev := startNode(t, node.Config{Mode: node.ModeDev, NATSURL: srv.ClientURL()})
	alice := sdk(t, "alice", client.Config{URLs: []string{wsURL(dev)}})
	bob := sdk(t, "bob", client.Config{URLs: []string{wsURL(dev)}})
	ctx := context.Background()
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	conns := func() map[string]*server.ConnInfo {
		cz, err := srv.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*server.ConnInfo{}
		for _, c := range cz.Conns {
			out[c.Name] = c
		}
		return out
	}
	before := conns()
	if before["natter-dev-consumers"] == nil || before["natter-dev"] == nil {
		t.Fatalf("connections %v, want natter-dev and natter-dev-consumers", keys(before))
	}

	const n = 200
	for i := range n {
		if _, err := alice.Send(ctx, conv.ID, fmt.Sprint("m", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	deadline := time.After(60 * time.Second)
	for got := 0; got < n; {
		select {
		case m := <-bob.Messages():
			if m.Conv == conv.ID {
				got++
			}
		case <-deadline:
			t.Fatalf("bob received %d of %d", got, n)
		}
	}
	// Every message is delivered to three consumers (persist, fanout,
	// events): 3n messages to the consumers' connection.
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		after := conns()
		cons := after["natter-dev-consumers"].OutMsgs - before["natter-dev-consumers"].OutMsgs
		if cons < 3*n {
			return fmt.Errorf("natter-dev-consumers got %d messages, want at least %d (3 consumers x %d)", cons, 3*n, n)
		}
		return nil
	})
}

func keys(m map[string]*server.ConnInfo) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
