package events_test

import (
	"bytes"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/events"
)

// checkMessageMsg fails unless MessageMsg(m) is the message Msg(MessageEvent(m))
// makes: subject, Nats-Msg-Id and payload byte for byte.
func checkMessageMsg(t *testing.T, m natter.Message) {
	t.Helper()
	ev, err := events.MessageEvent(m)
	if err != nil {
		t.Fatal(err)
	}
	want, wantErr := events.Msg(ev)
	got, gotErr := events.MessageMsg(&m)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("MessageMsg(%+v) error %v, Msg error %v", m, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if got.Subject != want.Subject || got.Header.Get("Nats-Msg-Id") != want.Header.Get("Nats-Msg-Id") || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("MessageMsg:\n%s %v\n%s\nMsg(MessageEvent):\n%s %v\n%s", got.Subject, got.Header, got.Data, want.Subject, want.Header, want.Data)
	}
}

// The events role's hand-written envelope is what encoding/json writes for
// every kind of entry, escapes and optional fields included.
func TestMessageMsg(t *testing.T) {
	t.Parallel()
	for _, m := range []natter.Message{
		{ID: "m_x", Conv: "d_a_b", Seq: 1, From: "alice", Cmid: "c1", Body: "hi", TS: 1767225600000},
		{ID: "m_x", Conv: "g_1", Seq: 7, From: "alice", Cmid: "c1", Type: "text", Body: "<b>&amp;</b> \" \\ \n \u2028 é 😀 \xff", TS: -1},
		{ID: "m_e", Conv: "g_1", Seq: 8, From: "svc_bot", Cmid: "e1", Type: natter.TypeEdit, Ref: "m_x", Body: "fixed", TS: 2},
		{ID: "m_d", Conv: "g_1", Seq: 9, From: "alice", Cmid: "d1", Type: natter.TypeDelete, Ref: "m_x", TS: 3},
		{ID: "m_r", Conv: "g_1", Seq: 10, From: "bob", Cmid: "r1", Body: "re", ReplyTo: "m_x", Thread: "m_x", Mentions: []string{"alice", "carol"}, TS: 4},
		{ID: "m_a", Conv: "g_1", Seq: 11, From: "bob", Cmid: "a1", Type: "image", Body: "",
			Attachments: []natter.Attachment{{ID: "att_1", Name: "<cat>.png", Size: 1234, Type: "image/png", Width: 640, Height: 480}}, TS: 5},
		{ID: "", Conv: "g_1", Seq: 1, TS: 1},         // no id: refused by both
		{ID: "m_x", Conv: "bad conv", Seq: 1, TS: 1}, // invalid conv: refused by both
	} {
		checkMessageMsg(t, m)
	}
}

func FuzzMessageMsg(f *testing.F) {
	f.Add("m_x", "g_1", uint64(1), "alice", "c1", "", "hi", "", "", int64(1767225600000))
	f.Add("m_x", "g_1", uint64(2), "alice", "c1", natter.TypeEdit, "<a href=\"x\">&</a> \u2028 \xff", "m_y", "alice", int64(-5))
	f.Add("m_x", "d_a_b", uint64(3), "a\"b", "c", natter.TypeDelete, "", "m_y", "", int64(0))
	f.Fuzz(func(t *testing.T, id, conv string, seq uint64, from, cmid, typ, body, ref, mention string, ts int64) {
		m := natter.Message{ID: id, Conv: conv, Seq: seq, From: from, Cmid: cmid, Type: typ, Body: body, Ref: ref, TS: ts}
		if mention != "" {
			m.Mentions = []string{mention}
		}
		checkMessageMsg(t, m)
	})
}
