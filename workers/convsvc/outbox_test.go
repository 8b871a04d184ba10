package convsvc_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// newEventsEnv is an env whose service publishes events (all streams
// applied), sweeping its outboxes every 100ms.
func newEventsEnv(t *testing.T) (*env, jetstream.JetStream) {
	t.Helper()
	e := newEnv(t, envConfig{})
	_ = e.svc.Stop()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctxT(t), js, streams.Config{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	e.svcCfg.Events = events.NewPublisher(js)
	e.svcCfg.OutboxSweep = 100 * time.Millisecond
	e.svc = e.startService(t)
	return e, js
}

// outbox reads conversation conv's outbox straight from the store.
func outbox(t testing.TB, e *env, conv string) []store.Pending {
	t.Helper()
	boxes, err := e.st.Outboxes(ctxT(t), math.MaxInt64, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if b.Conv == conv {
			return b.Pending
		}
	}
	return nil
}

// streamEvents returns the events of conv on EVENTS by subject.
func streamEvents(t testing.TB, js jetstream.JetStream, conv string) map[string][]natter.Event {
	t.Helper()
	ctx := ctxT(t)
	c, err := js.OrderedConsumer(ctx, subjects.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.EventsOfConv(conv)},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]natter.Event{}
	for n := info.NumPending; n > 0; {
		batch, err := c.FetchNoWait(int(n))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var ev natter.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if m.Headers().Get(jetstream.MsgIDHeader) != ev.ID {
				t.Fatalf("Nats-Msg-Id %q, event id %q", m.Headers().Get(jetstream.MsgIDHeader), ev.ID)
			}
			out[ev.Kind] = append(out[ev.Kind], ev)
			n--
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func eventUsers(t testing.TB, ev natter.Event) []string {
	t.Helper()
	var u natter.EventUsers
	if err := json.Unmarshal(ev.Data, &u); err != nil {
		t.Fatal(err)
	}
	return u.Users
}

// Events reach the stream through the conversation's outbox: one per real
// change, on the stream once the request returns, the outbox empty then
// (a member change's) or soon after (a create's: its pull is batched in
// the background); with EVENTS gone the
// request succeeds, the event waits in the outbox and the sweeper
// publishes it once when the stream is back.
func TestOutbox(t *testing.T) {
	t.Parallel()
	e, js := newEventsEnv(t)

	t.Run("published at once", func(t *testing.T) {
		u := names("alice", "bob", "carol", "nobody")
		a, b, c := u[0], u[1], u[2]
		g := group(t, e, a, b)
		if got := streamEvents(t, js, g); len(got[natter.EventConversationCreated]) != 1 {
			t.Fatalf("events after create: %+v, want the conversation_created", got)
		}
		testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if box := outbox(t, e, g); len(box) != 0 {
				return fmt.Errorf("outbox after create: %+v", box)
			}
			return nil
		})
		for range 2 { // the second is no change
			if err := e.cl.AddMembers(ctxT(t), a, g, []string{c, b}); err != nil {
				t.Fatal(err)
			}
			if box := outbox(t, e, g); len(box) != 0 {
				t.Fatalf("outbox after add: %+v", box)
			}
		}
		for range 2 {
			if err := e.cl.RemoveMembers(ctxT(t), a, g, []string{c, u[3]}); err != nil {
				t.Fatal(err)
			}
			if box := outbox(t, e, g); len(box) != 0 {
				t.Fatalf("outbox after remove: %+v", box)
			}
		}
		got := streamEvents(t, js, g)
		if len(got) != 3 || len(got[natter.EventConversationCreated]) != 1 ||
			len(got[natter.EventMemberJoined]) != 1 || len(got[natter.EventMemberLeft]) != 1 {
			t.Fatalf("events %+v, want one created, one joined, one left", got)
		}
		if users := eventUsers(t, got[natter.EventMemberJoined][0]); !slices.Equal(users, []string{c}) {
			t.Fatalf("joined %v, want [%s]", users, c)
		}
		if users := eventUsers(t, got[natter.EventMemberLeft][0]); !slices.Equal(users, []string{c}) {
			t.Fatalf("left %v, want [%s]", users, c)
		}
		if j, l := got[natter.EventMemberJoined][0].ID, got[natter.EventMemberLeft][0].ID; j != "join:"+g+":1" || l != "leave:"+g+":2" {
			t.Fatalf("ids %s, %s", j, l)
		}
	})

	t.Run("concurrent identical adds", func(t *testing.T) {
		u := names("alice", "bob", "carol", "dave")
		a, b := u[0], u[1]
		g := group(t, e, a, b)
		errs := make(chan error, 6)
		for i := range cap(errs) {
			go func() {
				// Half add carol, half carol and dave: one change each
				// at most, whichever is written first.
				errs <- e.cl.AddMembers(ctxT(t), a, g, u[2:3+i%2])
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var all []string
		for _, ev := range streamEvents(t, js, g)[natter.EventMemberJoined] {
			all = append(all, eventUsers(t, ev)...)
		}
		slices.Sort(all)
		if !slices.Equal(all, u[2:4]) {
			t.Fatalf("joined across events %v, want each of %v once", all, u[2:4])
		}
		if box := outbox(t, e, g); len(box) != 0 {
			t.Fatalf("outbox %+v", box)
		}
	})

	t.Run("stream missing", func(t *testing.T) {
		u := names("alice", "bob", "dave", "erin")
		a, b := u[0], u[1]
		g := group(t, e, a, b)
		if err := js.DeleteStream(ctxT(t), subjects.StreamEvents); err != nil {
			t.Fatal(err)
		}
		if err := e.cl.AddMembers(ctxT(t), a, g, []string{u[2], b, u[3]}); err != nil {
			t.Fatalf("add with EVENTS missing: %v", err)
		}
		box := outbox(t, e, g)
		if len(box) != 1 || box[0].Kind != natter.EventMemberJoined || box[0].ID != "join:"+g+":1" ||
			!slices.Equal(eventUsers(t, box[0].Event), u[2:4]) {
			t.Fatalf("outbox %+v, want the member_joined of %v", box, u[2:4])
		}
		members, err := e.cl.Members(ctxT(t), g)
		if err != nil || !slices.Contains(members, u[2]) {
			t.Fatalf("members %v: %v", members, err)
		}
		// A direct create's event waits in the outbox collection too.
		d := direct(t, e, a, u[3])
		if box := outbox(t, e, d); len(box) != 1 || box[0].Kind != natter.EventConversationCreated {
			t.Fatalf("outbox of %s %+v, want its conversation_created", d, box)
		}
		if _, err := streams.Apply(ctxT(t), js, streams.Config{MemoryStorage: true}); err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if n := len(outbox(t, e, g)) + len(outbox(t, e, d)); n != 0 {
				return fmt.Errorf("outboxes still hold %d", n)
			}
			return nil
		})
		created := streamEvents(t, js, d)[natter.EventConversationCreated]
		var dc natter.Conversation
		if len(created) != 1 || json.Unmarshal(created[0].Data, &dc) != nil || dc.ID != d || len(dc.Members) != 2 {
			t.Fatalf("conversation_created of %s: %+v, want one with its two members", d, created)
		}
		// Pulled after the publish: nothing more will be published.
		got := streamEvents(t, js, g)
		joined := got[natter.EventMemberJoined]
		if len(got) != 1 || len(joined) != 1 {
			t.Fatalf("events %+v, want one member_joined", got)
		}
		if users := eventUsers(t, joined[0]); !slices.Equal(users, u[2:4]) || joined[0].Actor != a ||
			!strings.HasPrefix(joined[0].ID, "join:"+g+":") {
			t.Fatalf("member_joined %+v users %v", joined[0], users)
		}
	})

	t.Run("read retried until published", func(t *testing.T) {
		u := names("alice", "bob")
		g := group(t, e, u[0], u[1])
		if err := js.DeleteStream(ctxT(t), subjects.StreamEvents); err != nil {
			t.Fatal(err)
		}
		wantCode(t, e.cl.SetRead(ctxT(t), u[1], g, 7), "unavailable")
		if _, err := streams.Apply(ctxT(t), js, streams.Config{MemoryStorage: true}); err != nil {
			t.Fatal(err)
		}
		// The cursor moved on the first try; the retry publishes the event.
		if err := e.cl.SetRead(ctxT(t), u[1], g, 7); err != nil {
			t.Fatal(err)
		}
		if err := e.cl.SetRead(ctxT(t), u[1], g, 7); err != nil {
			t.Fatal(err)
		}
		got := streamEvents(t, js, g)
		if len(got[natter.EventReadMoved]) != 1 || got[natter.EventReadMoved][0].ID != "read:"+g+":"+u[1]+":7" {
			t.Fatalf("events %+v, want one read_moved", got)
		}
	})
}
