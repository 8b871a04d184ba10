package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/svcapi"
)

// svcEnv is what an internal service sees: a NATS connection of its own,
// JetStream on it and the service API client.
type svcEnv struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	api *svcapi.Client
}

func newSvcEnv(t testing.TB, n *node.Node) *svcEnv {
	t.Helper()
	nc := testenv.Connect(t, n.NATSURL())
	js := testenv.JetStream(t, nc)
	return &svcEnv{nc: nc, js: js, api: svcapi.NewClient(nc, 10*time.Second)}
}

func ctx10(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// group creates a group of members as service.
func (s *svcEnv) group(t testing.TB, service, name string, members ...string) natter.Conversation {
	t.Helper()
	c, err := s.api.CreateConversation(ctx10(t), svcapi.CreateRequest{Service: service, Kind: natter.KindGroup, Name: name, Members: members})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c
}

// history returns every message of conv (oldest first) through the API.
func (s *svcEnv) history(t testing.TB, conv string) []natter.Message {
	t.Helper()
	zero := uint64(0)
	var all []natter.Message
	after := &zero
	for {
		page, err := s.api.History(ctx10(t), svcapi.HistoryRequest{Service: "svc_test", Conv: conv, After: after, Limit: svcapi.MaxHistoryLimit})
		if err != nil {
			t.Fatalf("history %s: %v", conv, err)
		}
		all = append(all, page.Msgs...)
		if !page.More || len(page.Msgs) == 0 {
			return all
		}
		last := page.Msgs[len(page.Msgs)-1].Seq
		after = &last
	}
}

// settled waits until a durable consumer has handled every message its
// stream held when settled was called: the consumer's ack floor (messages
// acked or terminated, in stream order) reaches the stream's last sequence.
// The consumer must take every subject of the stream, as the worker
// consumers do.
//
// NumPending == 0 && NumAckPending == 0 is no proof: the server sends the
// PubAck before it counts the new message for its consumers (a separate
// goroutine does that), so right after a publish a consumer can report
// nothing pending and nothing unacked while the message sits in the stream
// undelivered.
func (s *svcEnv) settled(t testing.TB, stream, consumer string) {
	t.Helper()
	st, err := s.js.Stream(ctx10(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	c, err := s.js.Consumer(ctx10(t), stream, consumer)
	if err != nil {
		t.Fatalf("consumer %s/%s: %v", stream, consumer, err)
	}
	sc, cc := st.CachedInfo().Config, c.CachedInfo().Config
	if len(cc.FilterSubjects) > 0 || cc.FilterSubject != "" && !slices.Equal([]string{cc.FilterSubject}, sc.Subjects) {
		t.Fatalf("settled: %s/%s filters %q %q, not every subject of %q", stream, consumer, cc.FilterSubject, cc.FilterSubjects, sc.Subjects)
	}
	last := st.CachedInfo().State.LastSeq
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < last {
			return fmt.Errorf("%s/%s: ack floor at stream seq %d of %d (%d pending, %d unacked)",
				stream, consumer, info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// events returns every event of conv in stream order.
func (s *svcEnv) events(t testing.TB, conv string) []natter.Event {
	t.Helper()
	ctx := ctx10(t)
	c, err := s.js.CreateConsumer(ctx, subjects.StreamEvents, jetstream.ConsumerConfig{
		FilterSubject: subjects.EventsOfConv(conv), AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("events consumer: %v", err)
	}
	defer func() { _ = s.js.DeleteConsumer(context.Background(), subjects.StreamEvents, c.CachedInfo().Name) }()
	want := int(c.CachedInfo().NumPending)
	var out []natter.Event
	for len(out) < want {
		batch, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch events: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev natter.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("event %s: %v", m.Data(), err)
			}
			if m.Subject() != subjects.Event(ev.Kind, ev.Conv) {
				t.Fatalf("event %s on subject %s", ev.ID, m.Subject())
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != ev.ID {
				t.Fatalf("event %s has Nats-Msg-Id %q", ev.ID, id)
			}
			if events.IsMessageKind(ev.Kind) {
				t.Fatalf("message event %s on EVENTS: message events are the log's entries (docs/events.md)", ev.ID)
			}
			out = append(out, ev)
		}
		if got == 0 {
			t.Fatalf("fetch events: %d of %d: %v", len(out), want, batch.Error())
		}
	}
	return append(out, s.messageEvents(t, conv)...)
}

// messageEvents returns the message events of conv: its log entries, read
// as a consumer of im.msg.<conv> reads them (docs/events.md), as envelopes.
func (s *svcEnv) messageEvents(t testing.TB, conv string) []natter.Event {
	t.Helper()
	ctx := ctx10(t)
	c, err := s.js.OrderedConsumer(ctx, subjects.StreamMsgs, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.Msg(conv)}})
	if err != nil {
		t.Fatalf("log consumer: %v", err)
	}
	var out []natter.Event
	for want := int(c.CachedInfo().NumPending); len(out) < want; {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("log entry %d of %d: %v", len(out)+1, want, err)
		}
		ev, err := events.FromEntry(m.Data(), m.Headers())
		if err != nil {
			t.Fatalf("log entry %s: %v", m.Data(), err)
		}
		out = append(out, ev)
	}
	return out
}

// stored counts the archived messages of conv.
func stored(t testing.TB, n *node.Node, conv string) int64 {
	t.Helper()
	c, err := n.Store().CountMessages(ctx10(t), conv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCode checks err is a service error with code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *convapi.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}
