package test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/svcapi"
)

// Every state change appears once, with the documented envelope: on EVENTS,
// or for the message events in the log (MSGS):
// a conversation creation, a message (sent twice with one cmid), an edit, a
// reaction added and removed (each twice), a delete, a member join and leave (each done twice: the second changes
// nothing), a rename (twice: the second changes nothing) and a read (then
// delete, a member join and leave (each done twice: the second changes
// nothing), a rename and a conv.update (each twice: the second changes
// nothing) and a read (then
// an older read, which moves nothing).
func TestEventsOncePerChange(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{workers: 1})
	svc := newSvcEnv(t, m.dev)
	alice := mustDial(t, m.dev, "alice")
	ctx := ctx10(t)

	// alice creates it (she owns it, so she may rename and update it); the
	// service sends and changes members as in any group.
	conv := alice.createGroup("Events")
	sent, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv.ID, Cmid: "e1", Body: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv.ID, Cmid: "e1", Body: "hello"}); err != nil || !again.Dup {
		t.Fatalf("retry %+v: %v", again, err)
	}
	edit, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv.ID, Ref: sent.ID, Cmid: "e1-edit", Body: "hello!"})
	if err != nil {
		t.Fatal(err)
	}
	// A reaction added and removed, each twice (the second changes nothing).
	for i, remove := range []bool{false, false, true, true} {
		id := fmt.Sprint("x", i)
		alice.request(id, fmt.Sprintf(`{"op":"react","id":%q,"conv":%q,"ref":%q,"emoji":"👍","remove":%v}`, id, conv.ID, sent.ID, remove), nil)
	}
	del, err := svc.api.Delete(ctx, svcapi.DeleteRequest{Service: "svc_bot", Conv: conv.ID, Ref: sent.ID, Cmid: "e1-del"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := svc.api.AddMembers(ctx, "svc_bot", conv.ID, "bob", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := svc.api.RemoveMembers(ctx, "svc_bot", conv.ID, "bob", "nobody"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n1", "n2"} {
		alice.request(id, fmt.Sprintf(`{"op":"conv.rename","id":%q,"conv":%q,"name":"Renamed"}`, id, conv.ID), nil)
	}
	for _, id := range []string{"u1", "u2"} {
		alice.request(id, fmt.Sprintf(`{"op":"conv.update","id":%q,"conv":%q,"description":"About events"}`, id, conv.ID), nil)
	}
	alice.request("r1", fmt.Sprintf(`{"op":"read","id":"r1","conv":%q,"seq":%d}`, conv.ID, del.Seq), nil)
	alice.request("r2", fmt.Sprintf(`{"op":"read","id":"r2","conv":%q,"seq":1}`, conv.ID), nil)
	alice.request("r3", fmt.Sprintf(`{"op":"read","id":"r3","conv":%q,"seq":%d}`, conv.ID, del.Seq), nil)

	want := map[string]string{ // id -> kind
		"conv:" + conv.ID: natter.EventConversationCreated,
		"msg:" + sent.ID:  natter.EventMessageCreated,
		"msg:" + edit.ID:  natter.EventMessageEdited,
		"msg:" + del.ID:   natter.EventMessageDeleted,
		fmt.Sprintf("read:%s:alice:%d", conv.ID, del.Seq): natter.EventReadMoved,
		"rename:" + conv.ID + ":3":                        natter.EventConversationRenamed,
		"update:" + conv.ID + ":4":                        natter.EventConversationUpdated,
	}
	// The message events are the log's entries, the others come from the
	// conversations service: wait for all, then for the workers to be idle
	// (anything published twice would be there by then).
	var evs []natter.Event
	testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		evs = svc.events(t, conv.ID)
		if len(evs) < len(want)+4 {
			return fmt.Errorf("%d events, want %d", len(evs), len(want)+4)
		}
		return nil
	})
	svc.settled(t, subjects.StreamMsgs, subjects.ConsumerFanout)
	evs = svc.events(t, conv.ID)

	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		if ev.Conv != conv.ID || ev.TS == 0 || ev.ID == "" {
			t.Errorf("event %+v", ev)
		}
		if k, ok := want[ev.ID]; ok && k != ev.Kind {
			t.Errorf("event %s is %s, want %s", ev.ID, ev.Kind, k)
		}
		switch ev.Kind {
		case natter.EventMessageCreated, natter.EventMessageEdited, natter.EventMessageDeleted:
			var msg natter.Message
			if err := json.Unmarshal(ev.Data, &msg); err != nil || "msg:"+msg.ID != ev.ID || ev.Actor != "svc_bot" || ev.TS != msg.TS {
				t.Errorf("message event %+v (%v)", ev, err)
			}
			if ev.Kind != natter.EventMessageCreated && msg.Ref != sent.ID {
				t.Errorf("%s refers to %q, want %s", ev.Kind, msg.Ref, sent.ID)
			}
		case natter.EventMemberJoined, natter.EventMemberLeft:
			var u natter.EventUsers
			if err := json.Unmarshal(ev.Data, &u); err != nil || !slices.Equal(u.Users, []string{"bob"}) || ev.Actor != "svc_bot" {
				t.Errorf("member event %+v: users %v (%v)", ev, u.Users, err)
			}
		case natter.EventConversationCreated:
			var c natter.Conversation
			if err := json.Unmarshal(ev.Data, &c); err != nil || c.ID != conv.ID || c.CreatedBy != "alice" || ev.Actor != "alice" || len(c.Members) != 1 {
				t.Errorf("conversation event %+v (%v)", ev, err)
			}
		case natter.EventConversationRenamed:
			var n natter.EventName
			if err := json.Unmarshal(ev.Data, &n); err != nil || n.Name != "Renamed" || ev.Actor != "alice" {
				t.Errorf("rename event %+v (%v)", ev, err)
			}
		case natter.EventConversationUpdated:
			var u natter.EventUpdate
			if err := json.Unmarshal(ev.Data, &u); err != nil || u.Change != natter.UpdateProfile || u.Description != "About events" || ev.Actor != "alice" {
				t.Errorf("update event %+v (%v)", ev, err)
			}
		case natter.EventReadMoved:
			var r natter.EventRead
			if err := json.Unmarshal(ev.Data, &r); err != nil || r.User != "alice" || r.Seq != del.Seq || ev.Actor != "alice" {
				t.Errorf("read event %+v (%v)", ev, err)
			}
		}
	}
	// messages_expired needs a retention policy and a clock: workers/retention
	// and TestRetentionEndToEnd check it.
	kindsHere := slices.DeleteFunc(slices.Clone(natter.EventKinds), func(k string) bool { return k == natter.EventMessagesExpired })
	for _, k := range kindsHere {
		if kinds[k] != 1 {
			t.Errorf("%d %s events, want 1 (all: %v)", kinds[k], k, kinds)
		}
	}
	if len(evs) != len(kindsHere) {
		t.Errorf("%d events, want %d", len(evs), len(kindsHere))
	}
}

// TestEventsRoleCopiesMessages: the events role, run on request (not a
// default role), creates its consumer on MSGS and publishes each log entry
// to EVENTS as the message event a consumer of the log gets from it.
func TestEventsRoleCopiesMessages(t *testing.T) {
	t.Parallel()
	n := startNode(t, node.Config{Mode: node.ModeDev, Roles: node.KnownRoles})
	s := newSvcEnv(t, n)
	c := mustDial(t, n, "eve")
	conv := c.direct("fay")
	ack := c.send(conv.ID, "ev-1", "hello")
	want := s.messageEvents(t, conv.ID)
	var got natter.Event
	testenv.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		st, err := s.js.Stream(ctx10(t), subjects.StreamEvents)
		if err != nil {
			return err
		}
		raw, err := st.GetLastMsgForSubject(ctx10(t), subjects.Event(natter.EventMessageCreated, conv.ID))
		if err != nil {
			return err
		}
		return json.Unmarshal(raw.Data, &got)
	})
	if len(want) != 1 || got.ID != "msg:"+ack.ID || got.ID != want[0].ID || got.Kind != want[0].Kind || string(got.Data) != string(want[0].Data) {
		t.Fatalf("EVENTS has %+v, the log gives %+v", got, want)
	}
}
