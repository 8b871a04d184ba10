package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/runner"
)

func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Apply(ctx, js, streams.Config{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	return js
}

func eventCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    natter.Message
		want string
	}{
		{natter.Message{Type: "text"}, natter.EventMessageCreated},
		{natter.Message{}, natter.EventMessageCreated},
		{natter.Message{Type: natter.TypeEdit, Ref: "m_a"}, natter.EventMessageEdited},
		{natter.Message{Type: natter.TypeDelete, Ref: "m_a"}, natter.EventMessageDeleted},
		// Without a ref an entry of type edit is an ordinary message.
		{natter.Message{Type: natter.TypeEdit}, natter.EventMessageCreated},
	}
	for _, tt := range tests {
		if got := events.KindOf(tt.m); got != tt.want {
			t.Errorf("KindOf(%+v) = %s, want %s", tt.m, got, tt.want)
		}
	}
}

// Publishing one event twice (a retry after a lost ack) stores it once.
func TestPublishOnce(t *testing.T) {
	t.Parallel()
	js := newJS(t)
	p := events.NewPublisher(js)
	ev, err := events.ReadMoved("g_1", "alice", 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := eventCount(t, js); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
	raw, err := js.Stream(context.Background(), subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	got, err := raw.GetLastMsgForSubject(context.Background(), subjects.Event(natter.EventReadMoved, "g_1"))
	if err != nil {
		t.Fatal(err)
	}
	var back natter.Event
	if err := json.Unmarshal(got.Data, &back); err != nil || back.ID != "read:g_1:alice:7" || string(back.Data) != `{"user":"alice","seq":7}` {
		t.Fatalf("stored %s (%v)", got.Data, err)
	}
	if err := p.Publish(context.Background(), natter.Event{Kind: "x", Conv: "g_1"}); err == nil {
		t.Fatal("event without id published")
	}
}

// The events handler turns a log entry into one event, and a redelivery of
// the entry stores nothing new; an entry that does not decode is poison.
func TestHandlerRedelivery(t *testing.T) {
	t.Parallel()
	js := newJS(t)
	ctx := context.Background()
	entry := natter.Message{ID: "m_x", Conv: "g_1", Seq: 1, From: "alice", Cmid: "c1", Type: "text", Body: "hi", TS: 42}
	data, _ := json.Marshal(entry)
	if _, err := js.Publish(ctx, subjects.Msg("g_1"), data); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subjects.Msg("g_1"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	c, err := js.CreateConsumer(ctx, subjects.StreamMsgs, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d", len(msgs))
	}
	h := events.NewHandler(js, nil)
	for round := range 2 {
		res := h.Handle(ctx, msgs)
		if res[0].Outcome != runner.Ack || res[1].Outcome != runner.Poison {
			t.Fatalf("round %d: results %+v", round, res)
		}
	}
	if n := eventCount(t, js); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}
