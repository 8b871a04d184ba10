package webhooks_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/webhooks"
)

// failThrice fails the first three attempts of every event in three ways
// (5xx, 429, a dropped connection), then accepts it.
func failThrice(_ *http.Request, _ string, n int) int {
	switch n {
	case 1:
		return http.StatusInternalServerError
	case 2:
		return http.StatusTooManyRequests
	case 3:
		return dropConn
	}
	return http.StatusNoContent
}

func TestRetriesThenDeliversOnceInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, failThrice)
	reg := prometheus.NewRegistry()
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{endpoint("flaky", rc)}, Registerer: reg})

	evs := e.publishN(12)
	rc.waitDelivered(evs)
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error { return e.settled("flaky") })
	rc.check()
	for _, ev := range evs {
		if n := rc.attemptsOf(ev.ID); n != 4 {
			t.Errorf("event %s: %d attempts, want 4", ev.ID, n)
		}
	}
	for i, ev := range rc.deliveredEvents() {
		if string(ev.Body) != string(evs[i].Body) {
			t.Errorf("event %s: body %s, want as stored %s", ev.ID, ev.Body, evs[i].Body)
		}
	}
	labels := func(result string) map[string]string { return map[string]string{"endpoint": "flaky", "result": result} }
	if got := metric(t, reg, "natter_webhook_deliveries_total", labels(webhooks.ResultSuccess)); got != 12 {
		t.Errorf("success = %v, want 12", got)
	}
	if got := metric(t, reg, "natter_webhook_deliveries_total", labels(webhooks.ResultRetry)); got != 36 {
		t.Errorf("retry = %v, want 36", got)
	}
	if got := metric(t, reg, "natter_webhook_request_duration_seconds", map[string]string{"endpoint": "flaky"}); got != 48 {
		t.Errorf("request_duration_seconds count = %v, want 48", got)
	}
}

// A worker stopped in the middle and a new one started later lose nothing
// and deliver nothing twice.
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, failThrice)
	cfg := webhooks.Config{Endpoints: []webhooks.Endpoint{endpoint("flaky", rc)}}
	first, err := webhooks.Start(ctxT(t), e.connect(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := e.publishN(10)
	testenv.CheckFor(t, 20*time.Second, 2*time.Millisecond, func() error {
		if n := len(rc.deliveredIDs()); n < 3 {
			return fmt.Errorf("%d delivered", n)
		}
		return nil
	})
	stop(t, first)
	before := len(rc.deliveredIDs())
	if before >= len(evs) {
		t.Fatalf("all %d delivered before the restart; the test needs a restart in the middle", before)
	}
	t.Logf("%d of %d delivered before the restart", before, len(evs))

	evs = append(evs, e.publishN(10)...)
	if n := len(rc.deliveredIDs()); n != before {
		t.Fatalf("%d delivered after Stop returned", n-before)
	}
	e.start(cfg)
	rc.waitDelivered(evs)
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error { return e.settled("flaky") })
	rc.check()
	if info := e.consumerInfo("flaky"); info.AckFloor.Stream != uint64(len(evs)) {
		t.Errorf("ack floor %d, want %d", info.AckFloor.Stream, len(evs))
	}
}

// Events published before an endpoint existed are not replayed to it.
func TestNewEndpointStartsWithNewEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, always(http.StatusOK))
	e.publishN(3)
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{endpoint("late", rc)}})
	evs := e.publishN(2)
	rc.waitDelivered(evs)
	rc.check()
}

func TestKindsFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	chatRC := newReceiver(t, always(http.StatusOK))
	allRC := newReceiver(t, always(http.StatusAccepted))
	chat := endpoint("chat", chatRC)
	chat.Kinds = []string{webhooks.KindMessageCreated, webhooks.KindMemberJoined}
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{chat, endpoint("all", allRC)}})

	var all, chatWant []event
	for _, k := range []struct{ kind, conv string }{
		{webhooks.KindConversationCreated, "g1"}, {webhooks.KindMemberJoined, "g1"},
		{webhooks.KindMessageCreated, "g1"}, {webhooks.KindReadMoved, "g1"},
		{webhooks.KindMessageEdited, "g1"}, {webhooks.KindMessageDeleted, "g1"},
		{webhooks.KindMessageCreated, "g2"}, {webhooks.KindMemberLeft, "g1"},
		{webhooks.KindMessageCreated, "g3"}, // last: once it is in, every earlier event was decided
	} {
		ev := e.publish(k.kind, k.conv)
		all = append(all, ev)
		if k.kind == webhooks.KindMessageCreated || k.kind == webhooks.KindMemberJoined {
			chatWant = append(chatWant, ev)
		}
	}
	// Message events come from the log (one consumer), the others from
	// EVENTS (another): each in its stream's order, together in any.
	chatRC.waitDeliveredSet(chatWant)
	allRC.waitDeliveredSet(all)
	for _, name := range []string{"chat", "all"} {
		testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error { return e.settled(name) })
	}
	chatRC.check()
	allRC.check()
	if got := e.consumerInfo("chat").Config.FilterSubject; got != "im.evt.member_joined.>" {
		t.Errorf("chat filter on EVENTS %q", got)
	}
	if got := e.consumerInfoOn(subjects.StreamMsgs, "chat").Config.FilterSubject; got != subjects.MsgsAll {
		t.Errorf("chat filter on MSGS %q", got)
	}
	// The bodies of message events are the envelope of the entry, byte for
	// byte what the events role published to EVENTS.
	for _, ev := range chatRC.deliveredEvents() {
		for _, w := range chatWant {
			if w.ID == ev.ID && string(w.Body) != string(ev.Body) {
				t.Errorf("event %s: body %s, want %s", ev.ID, ev.Body, w.Body)
			}
		}
	}
}

// TestMessageEventsFromLog: an endpoint gets message events from the log,
// in the log's order, as the v1 envelope; a message event the events role
// (run for v1 consumers) publishes to EVENTS is not delivered a second
// time, and an endpoint of member events only has no consumer on the log.
func TestMessageEventsFromLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, always(http.StatusOK))
	members := newReceiver(t, always(http.StatusOK))
	mep := endpoint("members", members)
	mep.Kinds = []string{webhooks.KindMemberJoined}
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{endpoint("log", rc), mep}})
	var want []event
	for _, k := range []string{webhooks.KindMessageCreated, webhooks.KindMessageEdited, webhooks.KindMessageCreated, webhooks.KindMessageDeleted} {
		want = append(want, e.publish(k, "g1"))
		e.publishV1(k, "g1")
	}
	joined := e.publish(webhooks.KindMemberJoined, "g1")
	rc.waitDeliveredSet(append(slices.Clone(want), joined))
	members.waitDelivered([]event{joined})
	for _, name := range []string{"log", "members"} {
		testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error { return e.settled(name) })
	}
	var msgs []string
	for _, ev := range rc.deliveredEvents() {
		if ev.ID != joined.ID {
			msgs = append(msgs, ev.ID)
		}
	}
	var wantIDs []string
	for _, ev := range want {
		wantIDs = append(wantIDs, ev.ID)
	}
	if !slices.Equal(msgs, wantIDs) {
		t.Errorf("message events delivered %v, want %v in log order", msgs, wantIDs)
	}
	if _, err := e.js.Consumer(ctxT(t), subjects.StreamMsgs, webhooks.ConsumerName("members")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer of member events only on the log: %v", err)
	}
	rc.check()
	members.check()
}

// With MaxInFlight above one, attempts run in parallel and every event is
// still delivered once (order is not promised).
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	gate := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		if peak == 4 {
			select {
			case <-gate:
			default:
				close(gate)
			}
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		if n == 1 {
			select { // hold first attempts until four run at once
			case <-gate:
			case <-r.Context().Done():
			}
		}
		return failThrice(r, id, n)
	})
	ep := endpoint("wide", rc)
	ep.MaxInFlight = 4
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{ep}})
	evs := e.publishN(20)
	testenv.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		got := rc.deliveredIDs()
		if len(got) != len(evs) {
			return fmt.Errorf("%d of %d delivered", len(got), len(evs))
		}
		slices.Sort(got)
		want := make([]string, len(evs))
		for i, ev := range evs {
			want[i] = ev.ID
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("delivered %v, want %v", got, want)
		}
		return e.settled("wide")
	})
	rc.check()
	mu.Lock()
	defer mu.Unlock()
	if peak != 4 {
		t.Fatalf("peak %d requests at once, want MaxInFlight = 4", peak)
	}
}

// With MaxInFlight 1 a failing event holds back the events after it, so the
// endpoint still gets them in stream order.
func TestFailingEventHoldsBackLaterOnes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const first = "ev_1" // the first event of a new env
	rc := newReceiver(t, func(r *http.Request, id string, n int) int {
		if id == first {
			return failThrice(r, id, n)
		}
		return http.StatusOK
	})
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{endpoint("ordered", rc)}})
	evs := e.publishN(10)
	if evs[0].ID != first {
		t.Fatalf("first event %s, want %s", evs[0].ID, first)
	}
	rc.waitDelivered(evs)
	rc.check()
	if n := rc.attemptsOf(first); n != 4 {
		t.Fatalf("first event: %d attempts, want 4", n)
	}
}
