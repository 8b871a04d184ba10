package convapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestPoolClientSpreadsRequests: a client on several connections sends its
// requests round robin over them (an edge's requests no longer queue on one
// connection's lock), and each gets its own reply.
func TestPoolClientSpreadsRequests(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	// A responder on the get endpoint that echoes the conversation asked
	// for, standing in for the service.
	svc := testenv.Connect(t, srv.ClientURL())
	sub, err := svc.Subscribe(subjects.ConvEndpoint(convapi.OpGet), func(m *nats.Msg) {
		var r convapi.ConvRequest
		_ = json.Unmarshal(m.Data, &r)
		_ = m.Respond([]byte(`{"id":"` + r.Conv + `"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	ncs := []*nats.Conn{testenv.Connect(t, srv.ClientURL()), testenv.Connect(t, srv.ClientURL())}
	c := convapi.NewPoolClient(ncs, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := []uint64{ncs[0].Stats().OutMsgs, ncs[1].Stats().OutMsgs}
	const n = 20
	for i := range n {
		id := "g_c" + string(rune('a'+i))
		conv, err := c.Get(ctx, "u1", id)
		if err != nil {
			t.Fatal(err)
		}
		if conv.ID != id {
			t.Fatalf("asked for %s, got %s", id, conv.ID)
		}
	}
	for i, nc := range ncs {
		if got := nc.Stats().OutMsgs - before[i]; got != n/2 {
			t.Errorf("connection %d sent %d of the %d requests, want %d", i, got, n, n/2)
		}
	}
}
