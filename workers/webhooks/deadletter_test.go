package webhooks_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/webhooks"
)

// An endpoint that always fails dead-letters each event after MaxAttempts
// with a record naming it; a 4xx endpoint dead-letters at once; a healthy
// endpoint next to them gets every event while the failing one is stuck.
func TestDeadLetterAndIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	broken := newReceiver(t, func(r *http.Request, _ string, _ int) int {
		select { // stuck until released: the healthy endpoint must not wait for it
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusBadGateway
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release) // before the servers close: Close waits for requests
		}
	})
	healthy := newReceiver(t, always(http.StatusOK))
	rejecting := newReceiver(t, always(http.StatusUnprocessableEntity))

	brokenEP := endpoint("broken", broken)
	brokenEP.MaxAttempts = 3
	reg := prometheus.NewRegistry()
	e.start(webhooks.Config{
		Endpoints:  []webhooks.Endpoint{brokenEP, endpoint("healthy", healthy), endpoint("rejecting", rejecting)},
		Registerer: reg,
	})
	evs := e.publishN(5)

	healthy.waitDelivered(evs)
	if n := broken.attemptsOf(evs[0].ID); n != 1 {
		t.Fatalf("broken endpoint: %d attempts of the first event while stuck, want 1", n)
	}
	if dl := e.deadLetters("broken"); len(dl) != 0 {
		t.Fatalf("%d dead letters of the broken endpoint while it is stuck", len(dl))
	}
	close(release)

	testenv.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		for name, want := range map[string]int{"broken": len(evs), "rejecting": len(evs)} {
			if n := len(e.deadLetters(name)); n != want {
				return fmt.Errorf("%s: %d dead letters, want %d", name, n, want)
			}
			if err := e.settled(name); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		endpoint string
		attempts int
		status   int
		reason   string
	}{
		{"broken", 3, http.StatusBadGateway, "3 attempts failed"},
		{"rejecting", 1, http.StatusUnprocessableEntity, "permanent failure"},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			dls := e.deadLetters(tc.endpoint)
			for i, dl := range dls {
				ev := evs[i]
				if string(dl.Data) != string(ev.Body) {
					t.Errorf("record %d: data %s, want the event %s", i, dl.Data, ev.Body)
				}
				for h, want := range map[string]string{
					webhooks.HeaderDLQEndpoint: tc.endpoint,
					webhooks.HeaderDLQAttempts: strconv.Itoa(tc.attempts),
					webhooks.HeaderDLQStatus:   strconv.Itoa(tc.status),
					runner.HeaderDLQDeliveries: strconv.Itoa(tc.attempts),
					runner.HeaderDLQStream:     webhooks.StreamEvents,
					runner.HeaderDLQMsgID:      ev.ID,
					runner.HeaderDLQSubject:    "im.evt." + ev.Kind + "." + ev.Conv,
				} {
					if got := dl.Header.Get(h); got != want {
						t.Errorf("record %d: %s = %q, want %q", i, h, got, want)
					}
				}
				if got := dl.Header.Get(webhooks.HeaderDLQError); !strings.Contains(got, strconv.Itoa(tc.status)) {
					t.Errorf("record %d: error %q", i, got)
				}
				if got := dl.Header.Get(runner.HeaderDLQReason); !strings.Contains(got, "webhook "+tc.endpoint) || !strings.Contains(got, tc.reason) {
					t.Errorf("record %d: reason %q", i, got)
				}
				if dl.Subject != webhooks.DeadLetterSubject(tc.endpoint) {
					t.Errorf("record %d: subject %s", i, dl.Subject)
				}
			}
			rc := map[string]*receiver{"broken": broken, "rejecting": rejecting}[tc.endpoint]
			for _, ev := range evs {
				if n := rc.attemptsOf(ev.ID); n != tc.attempts {
					t.Errorf("event %s: %d attempts, want %d", ev.ID, n, tc.attempts)
				}
			}
			rc.check()
			got := metric(t, reg, "natter_webhook_deliveries_total", map[string]string{"endpoint": tc.endpoint, "result": webhooks.ResultDeadLetter})
			if got != float64(len(evs)) {
				t.Errorf("dead_letter = %v, want %d", got, len(evs))
			}
		})
	}
	healthy.check()
}

// An attempt that gets no answer within Timeout fails and is retried.
func TestTimeoutRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, func(r *http.Request, _ string, n int) int {
		if n == 1 {
			<-r.Context().Done() // no answer in time: the sender gives up
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := endpoint("slow", rc)
	ep.Timeout = 100 * time.Millisecond
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{ep}})
	evs := e.publishN(2)
	rc.waitDelivered(evs)
	rc.check()
	for _, ev := range evs {
		if n := rc.attemptsOf(ev.ID); n != 2 {
			t.Errorf("event %s: %d attempts, want 2", ev.ID, n)
		}
	}
}

// An event whose last attempt never settled (its worker died) is
// dead-lettered on redelivery without a further attempt: counting attempts
// in the handler instead of a server-side MaxDeliver means it is never
// dropped without a record.
func TestLastAttemptLostIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, always(http.StatusOK))
	ep := endpoint("once", rc)
	ep.MaxAttempts = 1
	if _, err := webhooks.EnsureConsumers(ctxT(t), e.js, webhooks.StreamEvents, []webhooks.Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	evs := e.publishN(1)
	// A worker takes the event for its only attempt and dies: the event
	// comes back (here at once, with a Nak, instead of after AckWait).
	cons, err := e.js.Consumer(ctxT(t), webhooks.StreamEvents, webhooks.ConsumerName("once"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	e.start(webhooks.Config{Endpoints: []webhooks.Endpoint{ep}})
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := len(e.deadLetters("once")); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return e.settled("once")
	})
	dl := e.deadLetters("once")[0]
	if string(dl.Data) != string(evs[0].Body) || dl.Header.Get(webhooks.HeaderDLQAttempts) != "1" ||
		!strings.Contains(dl.Header.Get(runner.HeaderDLQReason), "no attempts left") {
		t.Fatalf("dead letter %s %v", dl.Data, dl.Header)
	}
	if n := rc.attemptsOf(evs[0].ID); n != 0 {
		t.Fatalf("%d further attempts", n)
	}
}
