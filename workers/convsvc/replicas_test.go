package convsvc_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestReplicas: two instances on two connections share the requests (one
// queue group) and both answer micro's discovery.
func TestReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	second := e.startService(t)
	u := names("alice", "bob")
	d := direct(t, e, u[0], u[1])

	gets := func(s micro.Service) int {
		for _, ep := range s.Stats().Endpoints {
			if ep.Subject == subjects.ConvEndpoint("get") {
				return ep.NumRequests
			}
		}
		return 0
	}
	testenv.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if _, err := e.cl.Get(ctxT(t), u[0], d); err != nil {
			return err
		}
		if a, b := gets(e.svc), gets(second); a == 0 || b == 0 {
			return fmt.Errorf("requests per instance: %d and %d", a, b)
		}
		return nil
	})

	ping, err := micro.ControlSubject(micro.PingVerb, subjects.ServiceConversations, "")
	if err != nil {
		t.Fatal(err)
	}
	inbox := e.nc.NewRespInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.PublishRequest(ping, inbox, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{e.svc.Info().ID: true, second.Info().ID: true}
	seen := map[string]bool{}
	for len(seen) < len(want) {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("ping answers %v: %v", seen, err)
		}
		var p micro.Ping
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Name != subjects.ServiceConversations || !want[p.ID] {
			t.Fatalf("unexpected ping answer %+v", p)
		}
		seen[p.ID] = true
	}
	info := e.svc.Info()
	const endpoints = 20 // receipts, rename, moderate, block, unblock and blocks are the 15th to 20th
	if len(info.Endpoints) != endpoints || info.Endpoints[0].QueueGroup != subjects.QueueConversations {
		t.Fatalf("info %+v", info)
	}
}
