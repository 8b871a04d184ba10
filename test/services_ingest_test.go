package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/svcapi"
)

// ingest publishes one message to the ingest subject of conv through
// JetStream (so it is durable when this returns) and returns the ack.
func (s *svcEnv) ingest(t testing.TB, conv, msgID, payload string) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(subjects.Ingest(conv))
	m.Data = []byte(payload)
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := s.js.PublishMsg(ctx10(t), m)
	if err != nil {
		t.Fatalf("publish to ingest: %v", err)
	}
	return ack
}

// Fire-and-forget sends on im.ingest.<conv> are appended like client sends:
// members receive them in order with the right seq; a re-published
// Nats-Msg-Id stores nothing new, neither inside JetStream's dedup window
// (the stream drops it) nor when the same (from, cmid) was already sent
// through the API (the log's idempotency answers).
func TestIngest(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{workers: 1})
	svc := newSvcEnv(t, m.dev)
	alice := mustDial(t, m.dev, "alice")
	conv := svc.group(t, "svc_metrics", "Metrics", "alice").ID

	const n = 20
	for i := range n {
		svc.ingest(t, conv, fmt.Sprintf("x%d", i), fmt.Sprintf(`{"from":"svc_metrics","body":"sample %d"}`, i))
	}
	got := alice.collect(conv, n)
	for seq := uint64(1); seq <= n; seq++ {
		msg, ok := got[seq]
		if !ok || msg.From != "svc_metrics" || !strings.HasPrefix(msg.Body, "sample ") || msg.Type != "text" {
			t.Fatalf("seq %d: %+v", seq, msg)
		}
	}
	// Inside one batch one conversation's messages keep their order; the
	// batches of the two ingest replicas (dev node and worker) may not.
	// Each (cmid, body) pair is the one published.
	for _, msg := range got {
		if msg.Body != "sample "+strings.TrimPrefix(msg.Cmid, "x") {
			t.Fatalf("cmid %s has body %q", msg.Cmid, msg.Body)
		}
	}

	// The same Nats-Msg-Id again: a duplicate for the stream.
	if ack := svc.ingest(t, conv, "x0", `{"from":"svc_metrics","body":"sample 0"}`); !ack.Duplicate {
		t.Fatalf("re-publish not a duplicate: %+v", ack)
	}
	// A cmid the API sent before, past the stream's dedup (a new msg id for
	// JetStream, the same message for natter): appended by the ingest role
	// as a duplicate, nothing stored.
	sent, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_metrics", Conv: conv, Cmid: "api-1", Body: "via api"})
	if err != nil || sent.Seq != n+1 {
		t.Fatalf("api send %+v: %v", sent, err)
	}
	alice.collect(conv, 1)
	svc.ingest(t, conv, "api-1", `{"from":"svc_metrics","body":"via api"}`)
	svc.settled(t, subjects.StreamIngest, subjects.ConsumerIngest)
	last := svc.ingest(t, conv, "x-last", `{"from":"svc_metrics","body":"last"}`)
	if last.Duplicate {
		t.Fatal("sentinel is a duplicate")
	}
	if c := alice.collect(conv, 1); c[n+2].Body != "last" {
		t.Fatalf("after the duplicates alice got %+v, want seq %d", c, n+2)
	}
	if msgs := svc.history(t, conv); len(msgs) != n+2 {
		t.Fatalf("history has %d messages, want %d", len(msgs), n+2)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if c := stored(t, m.dev, conv); c != n+2 {
			return fmt.Errorf("%d archived, want %d", c, n+2)
		}
		return nil
	})
}

// Ingest messages that can never be appended are dead-lettered with a
// reason and store nothing; the good ones around them go through.
func TestIngestPoison(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	svc := newSvcEnv(t, m.dev)
	conv := svc.group(t, "svc_metrics", "Metrics", "alice").ID
	big := strings.Repeat("x", svcapi.DefaultMaxBody+1)
	cases := []struct {
		name, conv, msgID, payload, reason string
	}{
		{"not json", conv, "p1", `{"from":`, "payload"},
		{"missing Nats-Msg-Id", conv, "", `{"from":"svc_metrics","body":"x"}`, "Nats-Msg-Id"},
		{"invalid Nats-Msg-Id", conv, "a.b", `{"from":"svc_metrics","body":"x"}`, "Nats-Msg-Id"},
		{"missing from", conv, "p2", `{"body":"x"}`, "from"},
		{"missing body", conv, "p3", `{"from":"svc_metrics"}`, "body"},
		{"body over the limit", conv, "p4", fmt.Sprintf(`{"from":"svc_metrics","body":%q}`, big), "too_big"},
		{"reserved type", conv, "p5", `{"from":"svc_metrics","body":"x","type":"delete"}`, "type"},
		{"unknown conversation", "g_nope", "p6", `{"from":"svc_metrics","body":"x"}`, "not_found"},
	}
	for _, tc := range cases {
		svc.ingest(t, tc.conv, tc.msgID, tc.payload)
	}
	svc.ingest(t, conv, "good", `{"from":"svc_metrics","body":"good"}`)
	svc.settled(t, subjects.StreamIngest, subjects.ConsumerIngest)
	// Every message is acked or terminated (a poison one only once its dead
	// letter is stored), so the work queue empties; the server removes a
	// message just after it moves the consumer's ack floor.
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		ingest, err := svc.js.Stream(ctx10(t), subjects.StreamIngest)
		if err != nil {
			return err
		}
		if st := ingest.CachedInfo().State; st.Msgs != 0 {
			return fmt.Errorf("INGEST still holds %d messages (seq %d..%d)", st.Msgs, st.FirstSeq, st.LastSeq)
		}
		return nil
	})

	dlq, err := svc.js.Stream(ctx10(t), subjects.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	// Dead letters by original subject and Nats-Msg-Id (conversations are
	// handled in parallel, so their order may differ from the cases').
	reasons := map[string]string{}
	for seq := uint64(1); seq <= dlq.CachedInfo().State.LastSeq; seq++ {
		raw, err := dlq.GetMsg(ctx10(t), seq)
		if err != nil {
			t.Fatalf("dead letter %d of %d: %v", seq, dlq.CachedInfo().State.LastSeq, err)
		}
		if raw.Subject != subjects.DLQ("ingest") {
			t.Fatalf("dead letter on %s", raw.Subject)
		}
		if s := raw.Header.Get(runner.HeaderDLQStream); s != subjects.StreamIngest {
			t.Fatalf("dead letter %d from stream %q", seq, s)
		}
		key := raw.Header.Get(runner.HeaderDLQSubject) + "|" + raw.Header.Get(runner.HeaderDLQMsgID)
		reasons[key] = raw.Header.Get(runner.HeaderDLQReason)
	}
	if len(reasons) != len(cases) {
		t.Fatalf("%d dead letters, want %d: %q", len(reasons), len(cases), reasons)
	}
	for _, tc := range cases {
		if r := reasons[subjects.Ingest(tc.conv)+"|"+tc.msgID]; !strings.Contains(r, tc.reason) {
			t.Errorf("%s: reason %q does not name %q", tc.name, r, tc.reason)
		}
	}
	msgs := svc.history(t, conv)
	if len(msgs) != 1 || msgs[0].Body != "good" {
		t.Fatalf("history %+v, want only the good message", msgs)
	}
}
