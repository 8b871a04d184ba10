package webhooks_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/workers/webhooks"
)

func TestEnsureConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := validEndpoint(), validEndpoint()
	b.Name, b.Kinds = "audit", []string{webhooks.KindMemberLeft}
	eps := []webhooks.Endpoint{a, b}
	changes, err := webhooks.EnsureConsumers(ctxT(t), e.js, webhooks.StreamEvents, eps)
	// billing (every kind) gets one on EVENTS and one on MSGS, audit one.
	if err != nil || len(changes) != 3 || changes[0].Action != "created" {
		t.Fatalf("first ensure: %v, %v", changes, err)
	}
	changes, err = webhooks.EnsureConsumers(ctxT(t), e.js, webhooks.StreamEvents, eps)
	if err != nil || len(changes) != 0 {
		t.Fatalf("second ensure changed %v, %v", changes, err)
	}

	info := e.consumerInfo("audit")
	if c := info.Config; c.Durable != "WEBHOOK_AUDIT" || c.FilterSubject != "im.evt.member_left.>" || c.MaxAckPending != 1 ||
		c.MaxDeliver != -1 || c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverNewPolicy {
		t.Fatalf("audit consumer %+v", c)
	}
	if c := e.consumerInfo("billing").Config; c.FilterSubject != webhooks.EventsAll {
		t.Fatalf("billing filter %q, want every event", c.FilterSubject)
	}

	// A changed endpoint updates its consumer, which keeps its position.
	rc := newReceiver(t, always(http.StatusOK))
	b.URL = rc.srv.URL
	svc := e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{b}})
	ev := e.publish(webhooks.KindMemberLeft, "g1")
	rc.waitDelivered([]event{ev})
	stop(t, svc)
	b.Kinds = []string{webhooks.KindMemberLeft, webhooks.KindMemberJoined}
	b.MaxInFlight = 3
	changes, err = webhooks.EnsureConsumers(ctxT(t), e.js, webhooks.StreamEvents, []webhooks.Endpoint{b})
	if err != nil || len(changes) != 1 || changes[0].Action != "updated" || changes[0].Name != "EVENTS/WEBHOOK_AUDIT" {
		t.Fatalf("ensure after a change: %v, %v", changes, err)
	}
	info = e.consumerInfo("audit")
	got := slices.Sorted(slices.Values(info.Config.FilterSubjects))
	if !slices.Equal(got, []string{"im.evt.member_joined.>", "im.evt.member_left.>"}) || info.Config.MaxAckPending != 3 {
		t.Fatalf("updated consumer %+v", info.Config)
	}
	if info.AckFloor.Stream != 1 || info.NumPending != 0 {
		t.Fatalf("position lost: ack floor %d, %d pending", info.AckFloor.Stream, info.NumPending)
	}
	ev2 := e.publish(webhooks.KindMemberJoined, "g1")
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{b}})
	rc.waitDelivered([]event{ev, ev2})
	rc.check()

	if _, err := webhooks.EnsureConsumers(ctxT(t), e.js, "NOPE", eps); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
}
