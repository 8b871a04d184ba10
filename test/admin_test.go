package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// auditEvent returns the newest audit event of kind on EVENTS.
func auditEvent(t *testing.T, n *node.Node, kind string) natter.Event {
	t.Helper()
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, subjects.Event(kind, admin.AuditConv))
	if err != nil {
		t.Fatalf("audit event %s: %v", kind, err)
	}
	var ev natter.Event
	if err := json.Unmarshal(raw.Data, &ev); err != nil || ev.Kind != kind {
		t.Fatalf("audit event %s: %s", kind, raw.Data)
	}
	return ev
}

// TestAdminSessionsAndDisconnect: the sessions of a user on every edge
// (devices listed once), a disconnect of one device (bye and close 4005 on
// the edge that holds it, the other device untouched) and of all, each
// call an audit event.
func TestAdminSessionsAndDisconnect(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	tok := token(t, "sd-alice")
	d1 := mustDialTok(t, dev, tok, "d1")
	d2 := mustDialTok(t, other, tok, "d2")
	d2b := mustDialTok(t, other, tok, "d2")
	bob := mustDial(t, other, "sd-bob")

	var got admin.EdgesReply
	st, m := call(t, dev, admin.PathSessions, adminToken, `{"user":"sd-alice"}`)
	b, _ := json.Marshal(m)
	_ = json.Unmarshal(b, &got)
	if st != http.StatusOK || len(got.Sessions) != 3 || got.Edges != 2 || strings.Join(got.Devices, ",") != "d1,d2" {
		t.Fatalf("sessions: %d %+v, want 3 sessions on 2 edges, devices d1,d2", st, m)
	}
	if ev := auditEvent(t, dev, admin.EventSessions); !strings.Contains(string(ev.Data), "sd-alice") {
		t.Errorf("sessions audit event %s does not name the user", ev.Data)
	}

	st, m = call(t, dev, admin.PathDisconnect, adminToken, `{"user":"sd-alice","device":"d2","reason":"lost phone"}`)
	if st != http.StatusOK || m["closed"] != float64(2) {
		t.Fatalf("disconnect d2: %d %v, want 2 closed", st, m)
	}
	for _, c := range []*rawConn{d2, d2b} {
		f, err := c.read()
		if err != nil || f.T != protocol.FrameBye || f.Bye.Code != protocol.CloseDisconnected || !strings.Contains(f.Bye.Reason, "lost phone") {
			t.Fatalf("want bye 4005 with the reason, got %+v, %v", f, err)
		}
		if code, _ := c.closeCode(); code != protocol.CloseDisconnected {
			t.Fatalf("close %d, want %d", code, protocol.CloseDisconnected)
		}
	}
	// d1 and bob are still served.
	d1.request("p", `{"op":"ping","id":"p"}`, nil)
	bob.request("p", `{"op":"ping","id":"p"}`, nil)
	auditEvent(t, dev, admin.EventDisconnect)

	if st, m = call(t, dev, admin.PathDisconnect, adminToken, `{"user":"sd-alice"}`); st != http.StatusOK || m["closed"] != float64(1) {
		t.Fatalf("disconnect all: %d %v, want 1 closed", st, m)
	}
	if code, _ := d1.closeCode(); code != protocol.CloseDisconnected {
		t.Fatalf("close %d, want %d", code, protocol.CloseDisconnected)
	}
	testenv.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if _, m := call(t, dev, admin.PathSessions, adminToken, `{"user":"sd-alice"}`); len(m["sessions"].([]any)) != 0 {
			return fmt.Errorf("sessions left: %v", m["sessions"])
		}
		return nil
	})
	for _, bad := range []string{`{}`, `{"user":"a b"}`, `{"user":"x","device":"a b"}`} {
		if st, m := call(t, dev, admin.PathDisconnect, adminToken, bad); st != http.StatusBadRequest || m["code"] != "bad_frame" {
			t.Errorf("disconnect %s: %d %v, want 400 bad_frame", bad, st, m)
		}
	}
}

// TestAdminConvFreeze: a frozen conversation refuses sends (over WebSocket
// and REST, on every edge), member changes and renames with forbidden
// naming the freeze, within the enforcement bound; inspect shows members,
// counts, the last seq and the freeze; unfreeze lifts it.
func TestAdminConvFreeze(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	alice, bob := mustDial(t, dev, "fz-alice"), mustDial(t, other, "fz-bob")
	conv := alice.createGroup("to freeze", "fz-bob")
	alice.send(conv.ID, "m1", "before")
	bob.send(conv.ID, "m2", "before")

	if st, m := call(t, dev, admin.PathConvFreeze, adminToken, fmt.Sprintf(`{"conv":%q,"reason":"under review"}`, conv.ID)); st != http.StatusOK {
		t.Fatalf("freeze: %d %v", st, m)
	}
	start := time.Now()
	frozen := func(c *rawConn, id, frame string) error {
		c.write(frame)
		f := c.reply(id)
		if f.T != protocol.FrameErr {
			return fmt.Errorf("%s accepted", frame)
		}
		if f.Err.Code != protocol.CodeForbidden || !strings.Contains(f.Err.Msg, "frozen") || !strings.Contains(f.Err.Msg, "under review") {
			t.Fatalf("%s: %+v, want forbidden naming the freeze", frame, f.Err)
		}
		return nil
	}
	// Probed with a rename to the same name (no message stored) on both
	// edges until both refuse.
	for _, c := range []*rawConn{alice, bob} {
		testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
			return frozen(c, "s", fmt.Sprintf(`{"op":"conv.rename","id":"s","conv":%q,"name":"to freeze"}`, conv.ID))
		})
	}
	t.Logf("freeze enforced on both edges after %v", time.Since(start))
	i := 0
	for _, f := range []string{
		fmt.Sprintf(`{"op":"send","id":"s","conv":%q,"cmid":"fb","body":"x"}`, conv.ID),
		fmt.Sprintf(`{"op":"send","id":"s","conv":%q,"cmid":"fa","body":"x"}`, conv.ID),
		fmt.Sprintf(`{"op":"members.add","id":"s","conv":%q,"users":["fz-carol"]}`, conv.ID),
		fmt.Sprintf(`{"op":"members.remove","id":"s","conv":%q,"users":["fz-bob"]}`, conv.ID),
		fmt.Sprintf(`{"op":"conv.rename","id":"s","conv":%q,"name":"x"}`, conv.ID),
	} {
		for _, c := range []*rawConn{alice, bob} {
			if err := frozen(c, "s", f); err != nil {
				t.Fatal(err)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+other.Addr()+"/v1/conversations/"+conv.ID+"/messages", strings.NewReader(`{"cmid":"rest1","body":"x"}`))
	req.Header.Set("Authorization", "Bearer "+token(t, "fz-bob"))
	if st, m := doJSON(t, req); st != http.StatusForbidden || m["code"] != string(protocol.CodeForbidden) {
		t.Fatalf("REST send to a frozen conversation: %d %v", st, m)
	}

	st, m := call(t, dev, admin.PathConvInspect, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID))
	if st != http.StatusOK || m["frozen"] != true || m["frozen_reason"] != "under review" || m["member_count"] != float64(2) ||
		m["last_seq"] != float64(2) || m["kind"] != "group" || fmt.Sprint(m["members"]) != "[fz-alice fz-bob]" {
		t.Fatalf("inspect: %d %v", st, m)
	}
	for _, kind := range []string{admin.EventConvFreeze, admin.EventConvInspect} {
		if ev := auditEvent(t, dev, kind); !strings.Contains(string(ev.Data), conv.ID) {
			t.Errorf("%s audit event %s does not name the conversation", kind, ev.Data)
		}
	}
	if st, m := call(t, dev, admin.PathConvInspect, adminToken, `{"conv":"no-such-conv"}`); st != http.StatusNotFound || m["code"] != "not_found" {
		t.Errorf("inspect unknown: %d %v, want 404 not_found", st, m)
	}

	if st, m := call(t, dev, admin.PathConvUnfreeze, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); st != http.StatusOK {
		t.Fatalf("unfreeze: %d %v", st, m)
	}
	testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
		i++
		id := fmt.Sprint("u", i)
		bob.write(fmt.Sprintf(`{"op":"send","id":%q,"conv":%q,"cmid":"after%d","body":"x"}`, id, conv.ID, i))
		if f := bob.reply(id); f.T != protocol.FrameRes {
			return fmt.Errorf("still refused: %+v", f.Err)
		}
		return nil
	})
	if _, m := call(t, dev, admin.PathConvInspect, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); m["frozen"] != false {
		t.Errorf("inspect after unfreeze: %v", m)
	}
}
