package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// restCall makes one REST request with tok and returns the status, the
// error code (if the body is an error) and the body.
func restCall(t testing.TB, method, url, tok, body string, hdr ...string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Code string }
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code, b
}

// checkSeqs fails unless msgs are exactly seqs from..to.
func checkSeqs(t testing.TB, what string, msgs []natter.Message, from, to int) {
	t.Helper()
	if len(msgs) != to-from+1 {
		t.Fatalf("%s: %d messages, want seqs %d..%d", what, len(msgs), from, to)
	}
	for i, m := range msgs {
		if m.Seq != uint64(from+i) {
			t.Fatalf("%s: position %d has seq %d, want %d", what, i, m.Seq, from+i)
		}
	}
}

// TestHistoryAfterZero: after 0 is an exclusive bound like a sync cursor,
// so it reads from the first message on, over WebSocket and REST; before 0,
// and before with after, are refused naming the field.
func TestHistoryAfterZero(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	group := alice.createGroup("paging", "bob")
	const n = 60
	for i := 1; i <= n; i++ {
		alice.write(fmt.Sprintf(`{"op":"send","id":"s%d","conv":%q,"cmid":"c%d","body":"m%d"}`, i, group.ID, i, i))
	}
	for i := 1; i <= n; i++ {
		if f := alice.reply(fmt.Sprint("s", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}

	var h protocol.HistoryResult
	alice.request("h1", fmt.Sprintf(`{"op":"history","id":"h1","conv":%q,"after":0}`, group.ID), &h)
	checkSeqs(t, "ws after 0", h.Msgs, 1, protocol.DefaultHistoryLimit)
	if !h.More {
		t.Fatal("ws after 0: more should be true")
	}
	alice.request("h2", fmt.Sprintf(`{"op":"history","id":"h2","conv":%q,"after":50,"limit":20}`, group.ID), &h)
	checkSeqs(t, "ws after 50", h.Msgs, 51, n)
	if h.More {
		t.Fatal("ws after 50: more should be false")
	}
	alice.request("h3", fmt.Sprintf(`{"op":"history","id":"h3","conv":%q,"limit":10}`, group.ID), &h)
	checkSeqs(t, "ws newest", h.Msgs, n-9, n)

	for _, tc := range []struct{ name, frame, msg string }{
		{"before 0", fmt.Sprintf(`{"op":"history","id":"b","conv":%q,"before":0}`, group.ID), "before: must be >= 1"},
		{"after 0 and before", fmt.Sprintf(`{"op":"history","id":"b","conv":%q,"after":0,"before":10}`, group.ID), "before: not allowed together with after"},
	} {
		alice.write(tc.frame)
		f := alice.reply("b")
		if f.T != protocol.FrameErr || f.Err.Code != protocol.CodeBadFrame || !strings.HasPrefix(f.Err.Msg, tc.msg) {
			t.Errorf("ws %s: %+v %+v, want bad_frame %q", tc.name, f, f.Err, tc.msg)
		}
	}

	tok := token(t, "bob")
	url := "http://" + m.dev.Addr() + "/v1/conversations/" + group.ID + "/messages"
	status, _, body := restCall(t, "GET", url+"?after=0&limit=25", tok, "")
	if status != 200 {
		t.Fatalf("rest after=0: %d %s", status, body)
	}
	h = protocol.HistoryResult{}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, "rest after=0", h.Msgs, 1, 25)
	if !h.More {
		t.Fatal("rest after=0: more should be true")
	}
	for _, q := range []string{"?before=0", "?after=0&before=5"} {
		if status, code, body := restCall(t, "GET", url+q, tok, ""); status != 400 || code != "bad_frame" || !strings.Contains(string(body), "before:") {
			t.Errorf("rest %s: %d %s, want 400 bad_frame naming before", q, status, body)
		}
	}
}

// TestRESTCmidAndIdempotencyKey: a REST send may name its cmid in the body,
// in the Idempotency-Key header, or in both with the same value; different
// values are refused with bad_frame and nothing is stored.
func TestRESTCmidAndIdempotencyKey(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	tok := token(t, "alice")
	base := "http://" + m.dev.Addr() + "/v1/conversations"
	status, _, body := restCall(t, "POST", base, tok, `{"kind":"group","name":"keys"}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var conv natter.Conversation
	_ = json.Unmarshal(body, &conv)
	url := base + "/" + conv.ID + "/messages"

	status, code, body := restCall(t, "POST", url, tok, `{"cmid":"body-1","body":"x"}`, "Idempotency-Key", "header-1")
	if status != 400 || code != "bad_frame" || !strings.Contains(string(body), "cmid: differs from the Idempotency-Key") {
		t.Fatalf("cmid and a different key: %d %s, want 400 bad_frame naming cmid", status, body)
	}
	status, _, body = restCall(t, "POST", url, tok, `{"cmid":"same-1","body":"y"}`, "Idempotency-Key", "same-1")
	if status != 201 || !strings.Contains(string(body), `"seq":1`) {
		t.Fatalf("cmid and the same key: %d %s, want 201 seq 1 (the refused send stored nothing)", status, body)
	}
	status, _, body = restCall(t, "POST", url, tok, `{"body":"y"}`, "Idempotency-Key", "same-1")
	if status != 200 || !strings.Contains(string(body), `"dup":true`) {
		t.Fatalf("key alone, resent: %d %s, want 200 dup", status, body)
	}
}

// TestLimitsAsDocumented: each bound of docs/protocol.md ("Limits") holds
// end to end: at the bound a request works, past it it is refused with
// bad_frame naming the field and the bound (never clamped).
func TestLimitsAsDocumented(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	group := alice.createGroup("limits", "bob")
	alice.send(group.ID, "l1", "one")

	// 128 characters of 3 bytes each: the service stores it whole.
	name := strings.Repeat("€", protocol.MaxName)
	var conv natter.Conversation
	alice.request("n1", fmt.Sprintf(`{"op":"conv.create","id":"n1","kind":"group","name":%q}`, name), &conv)
	if conv.Name != name {
		t.Fatalf("name of %d characters came back as %q", protocol.MaxName, conv.Name)
	}
	members := make([]string, protocol.MaxUsers+1)
	for i := range members {
		members[i] = fmt.Sprint("u", i)
	}
	many, _ := json.Marshal(members)
	for _, tc := range []struct{ name, frame, msg string }{
		{"name 129 characters", fmt.Sprintf(`{"op":"conv.create","id":"x","kind":"group","name":%q}`, name+"€"), "name: longer than 128 characters"},
		{"members 1001", fmt.Sprintf(`{"op":"conv.create","id":"x","kind":"group","members":%s}`, many), "members: more than 1000 users"},
		{"users 1001", fmt.Sprintf(`{"op":"members.add","id":"x","conv":%q,"users":%s}`, group.ID, many), "users: more than 1000 users"},
		{"history limit 201", fmt.Sprintf(`{"op":"history","id":"x","conv":%q,"limit":201}`, group.ID), "limit: must be 1..200"},
		{"sync limit 1001", `{"op":"sync","id":"x","cursors":{},"limit":1001}`, "limit: must be 1..1000"},
	} {
		alice.write(tc.frame)
		f := alice.reply("x")
		if f.T != protocol.FrameErr || f.Err.Code != protocol.CodeBadFrame || !strings.HasPrefix(f.Err.Msg, tc.msg) {
			t.Errorf("%s: %+v %+v, want bad_frame %q", tc.name, f, f.Err, tc.msg)
		}
	}
	var h protocol.HistoryResult
	alice.request("h", fmt.Sprintf(`{"op":"history","id":"h","conv":%q,"limit":200}`, group.ID), &h)
	checkSeqs(t, "history limit 200", h.Msgs, 1, 1)
	var s protocol.SyncResult
	alice.request("y", fmt.Sprintf(`{"op":"sync","id":"y","cursors":{%q:0},"limit":1000}`, group.ID), &s)

	url := "http://" + m.dev.Addr() + "/v1/conversations/" + group.ID + "/messages?limit=201"
	if status, code, body := restCall(t, "GET", url, token(t, "alice"), ""); status != 400 || code != "bad_frame" || !strings.Contains(string(body), "limit: must be 1..200") {
		t.Errorf("rest limit=201: %d %s, want 400 bad_frame naming limit", status, body)
	}
}

// TestRESTRateLimit: REST requests are limited per user: past the burst a
// request gets 429 rate_limited with Retry-After and is not executed;
// another user is not affected.
func TestRESTRateLimit(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	ec.RESTRate, ec.RESTBurst = 0.2, 3 // one request back every 5 s
	m := newMesh(t, meshOpts{edge: &ec})
	alice, bob := token(t, "alice"), token(t, "bob")
	base := "http://" + m.dev.Addr() + "/v1/conversations"
	status, _, body := restCall(t, "POST", base, alice, `{"kind":"group","name":"rl","members":["bob"]}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var conv natter.Conversation
	_ = json.Unmarshal(body, &conv)
	msgs := base + "/" + conv.ID + "/messages"
	for i := 1; i <= 2; i++ {
		if status, _, body := restCall(t, "POST", msgs, alice, fmt.Sprintf(`{"cmid":"r%d","body":"b"}`, i)); status != 201 {
			t.Fatalf("send %d within the burst: %d %s", i, status, body)
		}
	}
	req, _ := http.NewRequest("POST", msgs, strings.NewReader(`{"cmid":"r3","body":"over"}`))
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), `"code":"rate_limited"`) {
		t.Fatalf("over the limit: %d %s, want 429 rate_limited", resp.StatusCode, b)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "5" {
		t.Fatalf("Retry-After %q, want 5", ra)
	}
	// bob has his own bucket, and alice's refused send was not stored.
	status, _, body = restCall(t, "GET", msgs, bob, "")
	var h protocol.HistoryResult
	if err := json.Unmarshal(body, &h); status != 200 || err != nil {
		t.Fatalf("bob's history: %d %s", status, body)
	}
	checkSeqs(t, "history after the refused send", h.Msgs, 1, 2)
}

// nextConv reads frames until a conv push for conv; other frames are
// skipped.
func (c *rawConn) nextConv(conv string) *protocol.ConvFrame {
	c.t.Helper()
	for {
		f := c.next()
		if f.T == protocol.FrameConv && f.Conv.Conv == conv {
			return f.Conv
		}
	}
}

// TestRemovedVersusUnknown: an unknown conversation and one the user was
// removed from both answer not_member (existence does not leak), and the
// client tells them apart: the removed user gets a conv push "removed" at
// once and its sync leaves the conversation out; an added user gets
// "added" on every connection.
func TestRemovedVersusUnknown(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	alice := mustDial(t, m.dev, "alice")
	carol := mustDial(t, m.edges[1], "carol")
	carol2 := mustDial(t, m.dev, "carol")
	dave := mustDial(t, m.edges[1], "dave")
	group := alice.createGroup("rm", "bob", "carol")
	for _, c := range []*rawConn{carol, carol2} {
		if ev := c.nextConv(group.ID); ev.Event != protocol.ConvAdded {
			t.Fatalf("carol on create: %+v, want added", ev)
		}
	}
	alice.send(group.ID, "x1", "before")

	alice.request("rm", fmt.Sprintf(`{"op":"members.remove","id":"rm","conv":%q,"users":["carol"]}`, group.ID), nil)
	for _, c := range []*rawConn{carol, carol2} {
		if ev := c.nextConv(group.ID); ev.Event != protocol.ConvRemoved {
			t.Fatalf("carol after removal: %+v, want removed", ev)
		}
	}
	alice.request("add", fmt.Sprintf(`{"op":"members.add","id":"add","conv":%q,"users":["dave"]}`, group.ID), nil)
	if ev := dave.nextConv(group.ID); ev.Event != protocol.ConvAdded {
		t.Fatalf("dave after add: %+v, want added", ev)
	}

	for _, tc := range []struct{ name, conv string }{{"removed", group.ID}, {"never existed", "g_doesnotexist"}} {
		carol.write(fmt.Sprintf(`{"op":"send","id":"s","conv":%q,"cmid":"c1","body":"hi"}`, tc.conv))
		if f := carol.reply("s"); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeNotMember {
			t.Errorf("send to a %s conversation: %+v %+v, want not_member", tc.name, f, f.Err)
		}
		status, code, body := restCall(t, "GET", "http://"+m.dev.Addr()+"/v1/conversations/"+tc.conv, token(t, "carol"), "")
		if status != 403 || code != "not_member" {
			t.Errorf("REST get of a %s conversation: %d %s, want 403 not_member", tc.name, status, body)
		}
	}
	// Many connected members: each gets added (pushed by the service).
	var big []*rawConn
	var names []string
	for i := range 17 {
		names = append(names, fmt.Sprint("u", i))
		big = append(big, mustDial(t, m.dev, names[i]))
	}
	crowd := alice.createGroup("crowd", names...)
	for i, c := range big {
		if ev := c.nextConv(crowd.ID); ev.Event != protocol.ConvAdded {
			t.Fatalf("%s on create: %+v, want added", names[i], ev)
		}
	}

	var s protocol.SyncResult
	carol.request("y", fmt.Sprintf(`{"op":"sync","id":"y","cursors":{%q:0}}`, group.ID), &s)
	for _, sc := range s.Convs {
		if sc.Conv == group.ID {
			t.Fatalf("sync of a removed member lists the group: %+v", sc)
		}
	}
}
