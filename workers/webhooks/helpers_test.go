package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/webhooks"
)

const testSecret = "0123456789abcdef-test-secret"

// env is one embedded server with a stand-in events stream and the DLQ
// stream.
type env struct {
	t   testing.TB
	srv *natsembed.Server
	js  jetstream.JetStream // the publisher's connection
	n   atomic.Int64        // event ids
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, srv: testenv.StartNATS(t)}
	e.js = e.connect()
	ctx := ctxT(t)
	for _, sc := range []jetstream.StreamConfig{
		// Stand-in for the events stream: the envelope, one subject per kind
		// and conversation, deduplicated by event id.
		{Name: webhooks.StreamEvents, Subjects: []string{webhooks.EventsAll}, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage},
		// Stand-in for the log, where the message events are.
		{Name: subjects.StreamMsgs, Subjects: []string{subjects.MsgsAll}, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage},
		{Name: subjects.StreamDLQ, Subjects: []string{subjects.DLQAll}, Storage: jetstream.FileStorage},
	} {
		if _, err := e.js.CreateStream(ctx, sc); err != nil {
			t.Fatalf("create stream %s: %v", sc.Name, err)
		}
	}
	return e
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a new connection: one per worker instance, as separate
// processes have.
func (e *env) connect() jetstream.JetStream {
	e.t.Helper()
	return testenv.JetStream(e.t, testenv.Connect(e.t, e.srv.ClientURL()))
}

// event is a published event.
type event struct {
	ID, Kind, Conv string
	Body           []byte
}

// publish appends one event in the envelope of the events stream, or for a
// message kind an entry of the log (whose envelope the endpoint gets).
func (e *env) publish(kind, conv string) event {
	e.t.Helper()
	if events.IsMessageKind(kind) {
		return e.appendEntry(kind, conv)
	}
	id := fmt.Sprintf("ev_%d", e.n.Add(1))
	body, err := json.Marshal(map[string]any{
		"id": id, "kind": kind, "conv": conv, "ts": time.Now().UnixMilli(), "actor": "alice",
		"data": map[string]any{"text": "hello <&> \u2603"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.js.Publish(ctxT(e.t), "im.evt."+kind+"."+conv, body, jetstream.WithMsgID(id)); err != nil {
		e.t.Fatalf("publish %s: %v", id, err)
	}
	return event{ID: id, Kind: kind, Conv: conv, Body: body}
}

// publishV1 publishes a message event of kind in the v1 envelope to the
// events stream, as the events role does.
func (e *env) publishV1(kind, conv string) event {
	e.t.Helper()
	id := fmt.Sprintf("ev_%d", e.n.Add(1))
	body := fmt.Appendf(nil, `{"id":"msg:m_%s","kind":%q,"conv":%q,"ts":1,"actor":"alice","data":{}}`, id, kind, conv)
	if _, err := e.js.Publish(ctxT(e.t), "im.evt."+kind+"."+conv, body, jetstream.WithMsgID(id)); err != nil {
		e.t.Fatalf("publish %s: %v", id, err)
	}
	return event{ID: "msg:m_" + id, Kind: kind, Conv: conv, Body: body}
}

// appendEntry appends a log entry of kind (message_created, _edited or
// _deleted) to conv and returns its event as an endpoint gets it.
func (e *env) appendEntry(kind, conv string) event {
	e.t.Helper()
	n := e.n.Add(1)
	m := natter.Message{ID: fmt.Sprintf("m_%d", n), Conv: conv, Seq: uint64(n), From: "alice", Cmid: fmt.Sprint("c", n),
		Body: "hello <&> ☃", TS: time.Now().UnixMilli()}
	switch kind {
	case webhooks.KindMessageEdited:
		m.Type, m.Ref = natter.TypeEdit, "m_0"
	case webhooks.KindMessageDeleted:
		m.Type, m.Ref, m.Body = natter.TypeDelete, "m_0", ""
	}
	pm := nats.NewMsg(subjects.Msg(conv))
	pm.Data = msglog.AppendJSON(nil, &m)
	pm.Header.Set(jetstream.MsgIDHeader, m.ID)
	pm.Header.Set(msglog.HeaderSeq, fmt.Sprint(m.Seq))
	if _, err := e.js.PublishMsg(ctxT(e.t), pm); err != nil {
		e.t.Fatalf("append %s: %v", m.ID, err)
	}
	ev, err := events.MessageMsg(&m)
	if err != nil {
		e.t.Fatal(err)
	}
	return event{ID: "msg:" + m.ID, Kind: kind, Conv: conv, Body: ev.Data}
}

// publishN publishes n member_joined events over three conversations.
func (e *env) publishN(n int) []event {
	e.t.Helper()
	evs := make([]event, n)
	for i := range evs {
		evs[i] = e.publish(webhooks.KindMemberJoined, fmt.Sprintf("c%d", i%3))
	}
	return evs
}

// start runs a Service on its own connection and stops it at cleanup.
func (e *env) start(cfg webhooks.Config) *webhooks.Service {
	e.t.Helper()
	svc, err := webhooks.Start(ctxT(e.t), e.connect(), cfg)
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	e.t.Cleanup(func() { stop(e.t, svc) })
	return svc
}

func stop(t testing.TB, svc *webhooks.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// settled reports whether the endpoint's consumer has handled every event
// it takes that the stream holds: its ack floor (events acked or
// terminated, in stream order) has reached the last of them, and nothing is
// pending or unacknowledged.
//
// NumPending == 0 && NumAckPending == 0 alone is no proof: the server sends
// the PubAck before it counts the new message for its consumers (a separate
// goroutine does that), so right after a publish the consumer can report
// nothing pending and nothing unacked while the event sits in the stream
// undelivered.
func (e *env) settled(endpoint string) error {
	e.t.Helper()
	for _, stream := range []string{webhooks.StreamEvents, subjects.StreamMsgs} {
		if _, err := e.js.Consumer(ctxT(e.t), stream, webhooks.ConsumerName(endpoint)); errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		last, err := e.lastTaken(stream, e.consumerInfoOn(stream, endpoint).Config)
		if err != nil {
			return err
		}
		info := e.consumerInfoOn(stream, endpoint)
		if info.AckFloor.Stream < last || info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%s on %s: ack floor at stream seq %d of %d, %d pending, %d awaiting ack",
				endpoint, stream, info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
		}
	}
	return nil
}

// lastTaken returns the stream sequence of the last event the stream holds
// on a subject of consumer config cc's filters (0: none). The stream's last
// sequence will not do for a consumer that takes some kinds only: the last
// event may be of another kind, which its ack floor need not reach. The
// consumer's own counts (Delivered + NumPending) lag a publish like
// NumPending does; the stream's last message per subject does not: it is
// stored before the PubAck is sent.
func (e *env) lastTaken(stream string, cc jetstream.ConsumerConfig) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("events stream: %w", err)
	}
	filters := cc.FilterSubjects
	if cc.FilterSubject != "" {
		filters = []string{cc.FilterSubject}
	}
	if len(filters) == 0 {
		return s.CachedInfo().State.LastSeq, nil
	}
	var last uint64
	for _, f := range filters {
		m, err := s.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("last event on %s: %w", f, err)
		}
		last = max(last, m.Sequence)
	}
	return last, nil
}

func (e *env) consumerInfo(endpoint string) *jetstream.ConsumerInfo {
	e.t.Helper()
	return e.consumerInfoOn(webhooks.StreamEvents, endpoint)
}

func (e *env) consumerInfoOn(stream, endpoint string) *jetstream.ConsumerInfo {
	e.t.Helper()
	ctx := ctxT(e.t)
	c, err := e.js.Consumer(ctx, stream, webhooks.ConsumerName(endpoint))
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// deadLetters returns the dead-letter records of an endpoint, oldest first.
func (e *env) deadLetters(endpoint string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := ctxT(e.t)
	s, err := e.js.Stream(ctx, subjects.StreamDLQ)
	if err != nil {
		e.t.Fatalf("dlq stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatalf("dlq info: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("dlq get %d: %v", seq, err)
		}
		if m.Subject == webhooks.DeadLetterSubject(endpoint) {
			out = append(out, m)
		}
	}
	return out
}

// endpoint is a test endpoint on rc with short backoffs.
func endpoint(name string, rc *receiver) webhooks.Endpoint {
	return webhooks.Endpoint{Name: name, URL: rc.srv.URL + "/hooks/" + name, Secret: testSecret, Backoff: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

// dropConn is a status a policy returns to close the connection without an
// answer (a transport error at the sender).
const dropConn = -1

// policy decides the answer to attempt n (from 1) of event id.
type policy func(r *http.Request, id string, n int) int

// receiver is a webhook target standing in for a third party. It checks
// every request (signature, headers) and records what it accepted.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret string
	policy policy

	mu        sync.Mutex
	attempts  map[string]int // by event id
	delivered []event        // answered 2xx, in order
	problems  []string
}

func newReceiver(t testing.TB, p policy) *receiver {
	rc := &receiver{t: t, secret: testSecret, policy: p, attempts: make(map[string]int)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) problem(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.problem("read body: %v", err)
		return
	}
	var env struct{ ID, Kind, Conv string }
	if err := json.Unmarshal(body, &env); err != nil {
		rc.problem("body %q: %v", body, err)
	}
	if err := webhooks.Verify(rc.secret, r.Header.Get(webhooks.HeaderTimestamp), body, r.Header.Get(webhooks.HeaderSignature), 0); err != nil {
		rc.problem("event %s: verify: %v", env.ID, err)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json", webhooks.HeaderEventID: env.ID, webhooks.HeaderEventKind: env.Kind,
	} {
		if got := r.Header.Get(h); got != want {
			rc.problem("event %s: header %s = %q, want %q", env.ID, h, got, want)
		}
	}
	if r.Method != http.MethodPost {
		rc.problem("method %s", r.Method)
	}
	rc.mu.Lock()
	rc.attempts[env.ID]++
	n := rc.attempts[env.ID]
	rc.mu.Unlock()
	if got := r.Header.Get(webhooks.HeaderAttempt); got != fmt.Sprint(n) {
		rc.problem("event %s: attempt header %q, want %d", env.ID, got, n)
	}

	status := rc.policy(r, env.ID, n)
	if status == dropConn {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	if status >= 200 && status < 300 {
		rc.mu.Lock()
		if slices.ContainsFunc(rc.delivered, func(ev event) bool { return ev.ID == env.ID }) {
			rc.problems = append(rc.problems, fmt.Sprintf("event %s delivered again after a 2xx", env.ID))
		}
		rc.delivered = append(rc.delivered, event{ID: env.ID, Kind: env.Kind, Conv: env.Conv, Body: body})
		rc.mu.Unlock()
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status))
}

func (rc *receiver) deliveredIDs() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := make([]string, len(rc.delivered))
	for i, ev := range rc.delivered {
		ids[i] = ev.ID
	}
	return ids
}

func (rc *receiver) deliveredEvents() []event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.delivered)
}

func (rc *receiver) attemptsOf(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.attempts[id]
}

// check fails the test for every problem the receiver saw.
func (rc *receiver) check() {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.problems {
		rc.t.Error(p)
	}
}

// waitDelivered waits until the receiver accepted exactly want, in order.
func (rc *receiver) waitDelivered(want []event) {
	rc.t.Helper()
	ids := make([]string, len(want))
	for i, ev := range want {
		ids[i] = ev.ID
	}
	testenv.CheckFor(rc.t, 20*time.Second, 5*time.Millisecond, func() error {
		got := rc.deliveredIDs()
		if len(got) < len(ids) {
			return fmt.Errorf("%d of %d delivered", len(got), len(ids))
		}
		if !slices.Equal(got, ids) {
			return fmt.Errorf("delivered %v, want %v", got, ids)
		}
		return nil
	})
}

// waitDeliveredSet waits until the receiver accepted exactly want, in any
// order (events of the events stream and of the log are delivered by two
// consumers).
func (rc *receiver) waitDeliveredSet(want []event) {
	rc.t.Helper()
	ids := make([]string, len(want))
	for i, ev := range want {
		ids[i] = ev.ID
	}
	slices.Sort(ids)
	testenv.CheckFor(rc.t, 20*time.Second, 5*time.Millisecond, func() error {
		got := rc.deliveredIDs()
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			return fmt.Errorf("delivered %v, want %v", got, ids)
		}
		return nil
	})
}

// always answers status.
func always(status int) policy { return func(*http.Request, string, int) int { return status } }

// metric returns the value of a counter with the given labels.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
