package test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/svcapi"
)

// A service sends into a conversation over NATS; members on WebSockets on
// two edges receive it with the right seq, after a client's message; a
// retry with the same cmid stores nothing new and answers the same ack.
func TestServiceSendReachesMembers(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	svc := newSvcEnv(t, m.dev)
	alice := mustDial(t, m.edges[0], "alice")
	bob := mustDial(t, m.edges[1], "bob")
	conv := svc.group(t, "svc_billing", "Billing", "alice", "bob")
	if conv.CreatedBy != "svc_billing" || strings.Join(conv.Members, ",") != "alice,bob" {
		t.Fatalf("created %+v", conv)
	}

	first := alice.send(conv.ID, "a1", "hello")
	ack, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_billing", Conv: conv.ID, Cmid: "inv-1001", Body: "Invoice 1001 is due"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if ack.Seq != first.Seq+1 || ack.Dup || ack.ID == "" {
		t.Fatalf("ack %+v after client seq %d", ack, first.Seq)
	}
	for name, c := range map[string]*rawConn{"alice": alice, "bob": bob} {
		got := c.collect(conv.ID, 2)
		msg := got[ack.Seq]
		if msg.ID != ack.ID || msg.From != "svc_billing" || msg.Cmid != "inv-1001" || msg.Body != "Invoice 1001 is due" || msg.Type != "text" {
			t.Fatalf("%s got %+v, want the service's message as seq %d", name, msg, ack.Seq)
		}
	}

	again, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_billing", Conv: conv.ID, Cmid: "inv-1001", Body: "Invoice 1001 is due"})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Dup || again.ID != ack.ID || again.Seq != ack.Seq || again.TS != ack.TS {
		t.Fatalf("retry ack %+v, want %+v with dup", again, ack)
	}
	// A sentinel after the retry: once members have it, anything the retry
	// had stored would have come before it.
	last, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_billing", Conv: conv.ID, Cmid: "inv-1002", Body: "done"})
	if err != nil || last.Seq != ack.Seq+1 {
		t.Fatalf("sentinel %+v: %v", last, err)
	}
	if f := alice.next(); f.T != protocol.FrameMsg || f.Message.Seq != last.Seq {
		t.Fatalf("after the retry alice got %+v, want seq %d", f, last.Seq)
	}
	if msgs := svc.history(t, conv.ID); len(msgs) != 3 {
		t.Fatalf("history has %d messages, want 3", len(msgs))
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := stored(t, m.dev, conv.ID); n != 3 {
			return fmt.Errorf("%d archived, want 3", n)
		}
		return nil
	})
}

// Bad input on the service API gets an error reply with a stable code and
// stores nothing.
func TestServiceAPIBadInput(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	svc := newSvcEnv(t, m.dev)
	conv := svc.group(t, "svc_bot", "Bots", "alice").ID
	sent, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_bot", Conv: conv, Cmid: "b1", Body: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_other", Conv: conv, Cmid: "o1", Body: "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", svcapi.DefaultMaxBody+1)
	cases := []struct {
		name, op, req, code, field string
	}{
		{"malformed json", svcapi.OpSend, `{"service":"svc_bot","conv":`, convapi.CodeBadFrame, "request"},
		{"empty request", svcapi.OpSend, ``, convapi.CodeBadFrame, "request"},
		{"wrong type", svcapi.OpSend, `{"service":"svc_bot","conv":42}`, convapi.CodeBadFrame, "conv"},
		{"missing identity", svcapi.OpSend, fmt.Sprintf(`{"conv":%q,"cmid":"x1","body":"hi"}`, conv), convapi.CodeBadFrame, "service"},
		{"invalid identity", svcapi.OpSend, fmt.Sprintf(`{"service":"svc bot","conv":%q,"cmid":"x1","body":"hi"}`, conv), convapi.CodeBadFrame, "service"},
		{"unknown conversation", svcapi.OpSend, `{"service":"svc_bot","conv":"g_nope","cmid":"x1","body":"hi"}`, convapi.CodeNotFound, ""},
		{"body over the limit", svcapi.OpSend, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"cmid":"x2","body":%q}`, conv, big), convapi.CodeTooBig, "body"},
		{"missing body", svcapi.OpSend, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"cmid":"x3"}`, conv), convapi.CodeBadFrame, "body"},
		{"missing cmid", svcapi.OpSend, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"body":"hi"}`, conv), convapi.CodeBadFrame, "cmid"},
		{"reserved type", svcapi.OpSend, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"cmid":"x4","body":"hi","type":"edit"}`, conv), convapi.CodeBadFrame, "type"},
		{"history unknown conversation", svcapi.OpHistory, `{"service":"svc_bot","conv":"g_nope"}`, convapi.CodeNotFound, ""},
		{"history missing identity", svcapi.OpHistory, fmt.Sprintf(`{"conv":%q}`, conv), convapi.CodeBadFrame, "service"},
		{"create missing identity", svcapi.OpConvCreate, `{"kind":"group","members":["alice"]}`, convapi.CodeBadFrame, "service"},
		{"create no members", svcapi.OpConvCreate, `{"service":"svc_bot","kind":"group","members":[]}`, convapi.CodeBadFrame, "members"},
		{"create direct of one", svcapi.OpConvCreate, `{"service":"svc_bot","kind":"direct","members":["alice"]}`, convapi.CodeBadFrame, "members"},
		{"members.add unknown conversation", svcapi.OpMembersAdd, `{"service":"svc_bot","conv":"g_nope","users":["bob"]}`, convapi.CodeNotFound, ""},
		{"members.add missing users", svcapi.OpMembersAdd, fmt.Sprintf(`{"service":"svc_bot","conv":%q}`, conv), convapi.CodeBadFrame, "users"},
		{"edit another's message", svcapi.OpEdit, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"ref":%q,"cmid":"e1","body":"x"}`, conv, other.ID), convapi.CodeForbidden, "ref"},
		{"edit unknown ref", svcapi.OpEdit, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"ref":"m_nope","cmid":"e2","body":"x"}`, conv), convapi.CodeNotFound, "ref"},
		{"edit missing ref", svcapi.OpEdit, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"cmid":"e3","body":"x"}`, conv), convapi.CodeBadFrame, "ref"},
		{"edit body over the limit", svcapi.OpEdit, fmt.Sprintf(`{"service":"svc_bot","conv":%q,"ref":%q,"cmid":"e4","body":%q}`, conv, sent.ID, big), convapi.CodeTooBig, "body"},
		{"delete unknown conversation", svcapi.OpDelete, fmt.Sprintf(`{"service":"svc_bot","conv":"g_nope","ref":%q,"cmid":"d1"}`, sent.ID), convapi.CodeNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := svc.nc.RequestWithContext(ctx10(t), subjects.APIEndpoint(tc.op), []byte(tc.req))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			code, desc := msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader)
			if code != tc.code {
				t.Fatalf("code %q (%s), want %q", code, desc, tc.code)
			}
			if tc.field != "" && !strings.HasPrefix(desc, tc.field+":") {
				t.Fatalf("description %q does not start with %q", desc, tc.field+":")
			}
		})
	}
	msgs := svc.history(t, conv)
	if len(msgs) != 2 || msgs[0].ID != sent.ID || msgs[1].ID != other.ID {
		t.Fatalf("after bad input the conversation has %d messages: %+v", len(msgs), msgs)
	}
	page, err := svc.api.History(ctx10(t), svcapi.HistoryRequest{Service: "svc_bot", Conv: conv})
	if err != nil || len(page.Msgs) != 2 || page.More {
		t.Fatalf("history %+v: %v", page, err)
	}
	// Nothing reached the archive or a conversation that does not exist.
	svc.settled(t, subjects.StreamMsgs, subjects.ConsumerPersist)
	for c, want := range map[string]int64{conv: 2, "g_nope": 0} {
		if n := stored(t, m.dev, c); n != want {
			t.Fatalf("%s: %d archived, want %d", c, n, want)
		}
	}
	if convs, err := svc.api.Members(ctx10(t), "svc_bot", conv); err != nil || len(convs) != 1 {
		t.Fatalf("members %v: %v", convs, err)
	}
}

// Edits and deletes are log entries that members receive like messages, in
// seq order, with ref naming the message.
func TestServiceEditDeleteAndMembers(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	svc := newSvcEnv(t, m.dev)
	alice := mustDial(t, m.dev, "alice")
	carol := mustDial(t, m.dev, "carol")
	conv := svc.group(t, "svc_bot", "Bots", "alice").ID
	ctx := ctx10(t)
	orig, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv, Cmid: "m1", Body: "hello wrld"})
	if err != nil {
		t.Fatal(err)
	}
	edit, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv, Ref: orig.ID, Cmid: "m1-edit", Body: "hello world"})
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	again, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv, Ref: orig.ID, Cmid: "m1-edit", Body: "hello world"})
	if err != nil || !again.Dup || again.ID != edit.ID {
		t.Fatalf("retried edit %+v: %v", again, err)
	}
	if _, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv, Ref: edit.ID, Cmid: "m1-edit2", Body: "x"}); err == nil {
		t.Fatal("edit of an edit entry accepted")
	} else {
		wantCode(t, err, convapi.CodeBadFrame)
	}
	del, err := svc.api.Delete(ctx, svcapi.DeleteRequest{Service: "svc_mod", Conv: conv, Ref: orig.ID, Cmid: "m1-del"})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	got := alice.collect(conv, 3)
	want := []natter.Message{
		{ID: orig.ID, Seq: 1, From: "svc_bot", Type: "text", Body: "hello wrld"},
		{ID: edit.ID, Seq: 2, From: "svc_bot", Type: natter.TypeEdit, Body: "hello world", Ref: orig.ID},
		{ID: del.ID, Seq: 3, From: "svc_mod", Type: natter.TypeDelete, Ref: orig.ID},
	}
	for _, w := range want {
		g := got[w.Seq]
		if g.ID != w.ID || g.From != w.From || g.Type != w.Type || g.Body != w.Body || g.Ref != w.Ref {
			t.Fatalf("seq %d: got %+v, want %+v", w.Seq, g, w)
		}
	}
	if !got[2].IsEdit() || !got[3].IsDelete() || got[1].IsEdit() {
		t.Fatal("IsEdit/IsDelete")
	}
	// Members: the service adds carol (not a member itself) and removes
	// alice, who then gets not_member.
	if err := svc.api.AddMembers(ctx, "svc_bot", conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := svc.api.RemoveMembers(ctx, "svc_bot", conv, "alice"); err != nil {
		t.Fatal(err)
	}
	members, err := svc.api.Members(ctx, "svc_bot", conv)
	if err != nil || strings.Join(members, ",") != "carol" {
		t.Fatalf("members %v: %v", members, err)
	}
	next, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv, Cmid: "m2", Body: "for carol"})
	if err != nil {
		t.Fatal(err)
	}
	if c := carol.collect(conv, 1); c[next.Seq].Body != "for carol" {
		t.Fatalf("carol got %+v", c)
	}
	alice.write(fmt.Sprintf(`{"op":"history","id":"h","conv":%q}`, conv))
	if f := alice.reply("h"); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeNotMember {
		t.Fatalf("removed alice: %+v", f)
	}
	// Direct conversations: created once, their members cannot change.
	d1, err := svc.api.CreateConversation(ctx, svcapi.CreateRequest{Service: "svc_bot", Kind: natter.KindDirect, Members: []string{"bob", "alice"}})
	if err != nil || d1.ID != natter.DirectID("alice", "bob") {
		t.Fatalf("direct %+v: %v", d1, err)
	}
	d2, err := svc.api.CreateConversation(ctx, svcapi.CreateRequest{Service: "svc_bot", Kind: natter.KindDirect, Members: []string{"alice", "bob"}})
	if err != nil || d2.ID != d1.ID || d2.CreatedAt != d1.CreatedAt {
		t.Fatalf("direct again %+v: %v", d2, err)
	}
	wantCode(t, svc.api.AddMembers(ctx, "svc_bot", d1.ID, "carol"), convapi.CodeForbidden)
	var page svcapi.HistoryReply
	raw, err := svc.api.Call(context.Background(), svcapi.OpHistory, []byte(fmt.Sprintf(`{"service":"svc_bot","conv":%q,"limit":2}`, conv)))
	if err != nil || json.Unmarshal(raw, &page) != nil || len(page.Msgs) != 2 || !page.More || page.Msgs[1].Seq != next.Seq {
		t.Fatalf("newest page %s: %v", raw, err)
	}
}

// Messages older than the hot tier come from the archive: history pages
// across the boundary and an edit of an archived message work as with the
// hot tier.
func TestServiceArchive(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{streams: streams.Config{HotTier: 3}})
	svc := newSvcEnv(t, m.dev)
	conv := svc.group(t, "svc_bot", "Archive", "alice").ID
	ctx := ctx10(t)
	var acks []natter.Ack
	for i := range 6 {
		ack, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv, Cmid: fmt.Sprintf("a%d", i), Body: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
		// Archived before the hot tier trims it (see docs/design.md).
		svc.settled(t, subjects.StreamMsgs, subjects.ConsumerPersist)
	}
	edit, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv, Ref: acks[0].ID, Cmid: "a0-edit", Body: "zero"})
	if err != nil || edit.Seq != 7 {
		t.Fatalf("edit of an archived message %+v: %v", edit, err)
	}
	svc.settled(t, subjects.StreamMsgs, subjects.ConsumerPersist)
	all := svc.history(t, conv)
	if len(all) != 7 || all[0].ID != acks[0].ID || all[6].Ref != acks[0].ID {
		t.Fatalf("history across the archive: %+v", all)
	}
	for i, msg := range all {
		if msg.Seq != uint64(i+1) {
			t.Fatalf("history seq %d at %d", msg.Seq, i)
		}
	}
	page, err := svc.api.History(ctx, svcapi.HistoryRequest{Service: "svc_bot", Conv: conv, Before: 6, Limit: 4})
	if err != nil || len(page.Msgs) != 4 || page.Msgs[0].Seq != 2 || page.Msgs[3].Seq != 5 || !page.More {
		t.Fatalf("page before 6: %+v: %v", page, err)
	}
}
