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
	"github.com/natter-im/natter/workers/svcapi"
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
	first := alice.send(conv.ID, "m1", "before")
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
		fmt.Sprintf(`{"op":"admins.add","id":"s","conv":%q,"users":["fz-bob"]}`, conv.ID),
		fmt.Sprintf(`{"op":"msg.delete","id":"s","conv":%q,"ref":%q,"cmid":"fzdel"}`, conv.ID, first.ID),
	} {
		for _, c := range []*rawConn{alice, bob} {
			if err := frozen(c, "s", f); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The service API (no edge on its path) refuses it too, once the
	// api role's watcher has the entry.
	api := svcapi.NewClient(testenv.Connect(t, dev.NATSURL()), 10*time.Second)
	testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
		_, err := api.Send(context.Background(), svcapi.SendRequest{Service: "svc_test", Conv: conv.ID, Cmid: "svc1", Body: "x"})
		if err == nil {
			t.Fatal("service API send to a frozen conversation accepted")
		}
		if !strings.Contains(err.Error(), "frozen") {
			return fmt.Errorf("service API send: %v", err)
		}
		return nil
	})
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

// TestAdminErase: erasing a user tombstones each of their messages with a
// delete entry (hot tier and archive alike), blanks their bodies in the
// archive (messages and blocks; other users' messages untouched), deletes
// their cursors (store and CURSORS), closes their sessions, reports all of
// it and the kinds of data it does not know yet, and is an audit event.
// Only a process with the store erases; user tokens are refused.
func TestAdminErase(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	alice, bob := mustDial(t, dev, "er-alice"), mustDial(t, other, "er-bob")
	conv := alice.createGroup("erase", "er-bob")
	const n = 66 // a whole archive block (64) and two more
	var ids []string
	for i := range n {
		ids = append(ids, alice.send(conv.ID, fmt.Sprint("a", i), fmt.Sprint("secret ", i)).ID)
	}
	bobMsg := bob.send(conv.ID, "b0", "keep me")
	alice.request("r", fmt.Sprintf(`{"op":"read","id":"r","conv":%q,"seq":%d}`, conv.ID, n), nil)
	alice.request("k", fmt.Sprintf(`{"op":"ack","id":"k","conv":%q,"seq":%d}`, conv.ID, n), nil)
	alice.request("cs", fmt.Sprintf(`{"op":"conv.settings","id":"cs","conv":%q,"pinned":true}`, conv.ID), nil)
	alice.request("bl", `{"op":"block","id":"bl","users":["er-mallory"]}`, nil)
	alice.request("hd", `{"op":"presence.set","id":"hd","hidden":true}`, nil)
	st := dev.Store()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A block the persist role could not write with its batch is written
	// with a later one: bob's further messages give it one.
	nudge := 0
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		msgs, _ := st.CountMessages(ctx, conv.ID)
		blocks, _ := st.CountBlocks(ctx, conv.ID)
		if msgs < int64(n+1+nudge) || blocks != 1 {
			if msgs >= int64(n+1+nudge) {
				nudge++
				bob.send(conv.ID, fmt.Sprint("nudge", nudge), "keep me too")
			}
			return fmt.Errorf("archived %d messages, %d blocks", msgs, blocks)
		}
		return nil
	})

	edgeOnly := startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: dev.NATSURL(), Edge: edgeConfig(), Admin: admin.Config{Token: adminToken}})
	if code, m := call(t, edgeOnly, admin.PathErase, adminToken, `{"user":"er-alice"}`); code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(m["msg"]), "worker") {
		t.Fatalf("erase on an edge (no store): %d %v, want 503 naming the worker", code, m)
	}
	if code, m := call(t, dev, admin.PathErase, token(t, "er-alice"), `{"user":"er-alice"}`); code != http.StatusUnauthorized {
		t.Fatalf("erase with a user token: %d %v", code, m)
	}
	code, m := call(t, dev, admin.PathErase, adminToken, `{"user":"er-alice"}`)
	if code != http.StatusOK || m["tombstoned"] != float64(n) || m["archive_blanked"] != float64(n) || m["archive_blocks"] != float64(1) ||
		m["read_cursors"] != float64(1) || m["sessions_closed"] != float64(1) || m["cursor_keys"].(float64) < 2 || m["conversations"] != float64(1) {
		t.Fatalf("erase: %d %v", code, m)
	}
	if m["settings_keys"] != float64(1) || m["presence_keys"].(float64) < 2 {
		t.Errorf("erase: settings and presence keys %v, %v; want 1 and the block and hidden keys", m["settings_keys"], m["presence_keys"])
	}
	if other := m["other"].(map[string]any); other["push_tokens"] != "removed" || other["attachments"] == nil || other["attachments"] == "not in this build" {
		t.Errorf("erase report lists no pending kinds: %v", other)
	}
	if c, _ := alice.closeCode(); c != protocol.CloseDisconnected {
		t.Errorf("alice's session closed with %d, want %d", c, protocol.CloseDisconnected)
	}
	// The archive: alice's bodies are gone (the messages collection, and
	// the block when it is read from it), bob's is there.
	for _, id := range ids {
		if msg, err := st.GetMessage(ctx, id); err != nil || msg.Body != "" {
			t.Fatalf("message %s: %q, %v; want no body", id, msg.Body, err)
		}
	}
	msgs, ok, err := st.ArchiveRange(ctx, conv.ID, 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		// Seen on the embedded store: the rewritten block not found by
		// its _id; reads use the (blanked) messages collection then.
		t.Logf("archive block 1..64 not found by _id after the erase; reads fall back to the messages collection")
	}
	for _, msg := range msgs {
		if msg.From == "er-alice" && msg.Body != "" {
			t.Fatalf("archived message %d of alice still has its body %q", msg.Seq, msg.Body)
		}
	}
	if msg, err := st.GetMessage(ctx, bobMsg.ID); err != nil || msg.Body != "keep me" {
		t.Fatalf("bob's message: %q, %v", msg.Body, err)
	}
	// The log: one delete entry per message of alice, pushed to bob.
	deleted := map[string]bool{}
	for len(deleted) < n {
		f := bob.next()
		if f.T == protocol.FrameMsg && f.Message.Type == natter.TypeDelete {
			deleted[f.Message.Ref] = true
		}
	}
	for _, id := range ids {
		if !deleted[id] {
			t.Fatalf("no delete entry for %s", id)
		}
	}
	// The cursors.
	if c, _ := st.ReadCursor(ctx, "er-alice", conv.ID); c != 0 {
		t.Errorf("alice's read cursor in the store: %d", c)
	}
	js := testenv.JetStream(t, testenv.Connect(t, dev.NATSURL()))
	kv, err := js.KeyValue(ctx, subjects.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.ListKeysFiltered(ctx, "er-alice.>"); err == nil {
		for k := range keys.Keys() {
			t.Errorf("CURSORS key %s left", k)
		}
	}
	// (Not seen.<user>: the sessions erase closed write their last_seen as
	// they end, which may be after the purge.)
	for _, bf := range [][2]string{{subjects.BucketSettings, "er-alice.>"}, {subjects.BucketPresence, "hide.er-alice"}, {subjects.BucketPresence, "block.er-alice"}} {
		bucket, filter := bf[0], bf[1]
		bkv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if keys, err := bkv.ListKeysFiltered(ctx, filter); err == nil {
			for k := range keys.Keys() {
				t.Errorf("%s key %s left", bucket, k)
			}
		}
	}
	if ev := auditEvent(t, dev, admin.EventErase); !strings.Contains(string(ev.Data), "er-alice") {
		t.Errorf("erase audit event %s", ev.Data)
	}
}

// TestAdminConvDelete: deleting a group removes its members (it leaves
// their lists), refuses sends (frozen), leaves only the conv_deleted
// entry in the hot tier and nothing in the archive, and reports it.
func TestAdminConvDelete(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	alice, bob := mustDial(t, dev, "cd-alice"), mustDial(t, other, "cd-bob")
	conv := alice.createGroup("doomed", "cd-bob")
	for i := range 5 {
		alice.send(conv.ID, fmt.Sprint("a", i), "body")
	}
	st := dev.Store()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n, _ := st.CountMessages(ctx, conv.ID); n != 5 {
			return fmt.Errorf("archived %d", n)
		}
		return nil
	})
	code, m := call(t, dev, admin.PathConvDelete, adminToken, fmt.Sprintf(`{"conv":%q,"reason":"illegal content"}`, conv.ID))
	if code != http.StatusOK || m["members_removed"] != float64(2) || m["last_seq"] != float64(6) || m["hot_purged"] != float64(5) || m["archive_messages"] != float64(5) {
		t.Fatalf("conv delete: %d %v", code, m)
	}
	testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
		var list protocol.ConvList
		bob.request("l", `{"op":"conv.list","id":"l"}`, &list)
		for _, c := range list.Convs {
			if c.ID == conv.ID {
				return fmt.Errorf("bob still lists it")
			}
		}
		return nil
	})
	js := testenv.JetStream(t, testenv.Connect(t, dev.NATSURL()))
	s, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subjects.Msg(conv.ID)))
	if err != nil || info.State.Subjects[subjects.Msg(conv.ID)] != 1 {
		t.Fatalf("hot tier after delete: %v, %v", info.State.Subjects, err)
	}
	if last, err := s.GetLastMsgForSubject(ctx, subjects.Msg(conv.ID)); err != nil || !strings.Contains(string(last.Data), admin.TypeConvDeleted) {
		t.Fatalf("last entry: %v", err)
	}
	if _, m := call(t, dev, admin.PathConvInspect, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); m["frozen"] != true || !strings.Contains(fmt.Sprint(m["frozen_reason"]), "illegal content") {
		t.Errorf("inspect after delete: %v", m)
	}
	auditEvent(t, dev, admin.EventConvDelete)
}
