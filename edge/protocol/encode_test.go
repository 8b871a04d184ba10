package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

var testMsg = natter.Message{
	ID: "m_K5QWY3DFMZXGC4TBNFZGK2LMNQ", Conv: "g_1", Seq: 42, From: "alice",
	Cmid: "c-1", Type: "text", Body: "hi \"all\" <b>\u2028\n", TS: 1767225600000,
}

func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data any
		want string // data as JSON
	}{
		{"nil", nil, `{}`},
		{"empty struct", struct{}{}, `{}`},
		{"ack", natter.Ack{ID: "m_1", Conv: "c1", Seq: 3, TS: 9, Dup: true}, `{"id":"m_1","conv":"c1","seq":3,"ts":9,"dup":true}`},
		{"pong", protocol.Pong{TS: 5}, `{"ts":5}`},
		{"history empty", protocol.HistoryResult{}, `{"msgs":[],"more":false}`},
		{"history", protocol.HistoryResult{Msgs: []natter.Message{testMsg}, More: true}, ""},
		{"sync empty", protocol.SyncResult{}, `{"convs":[]}`},
		{"sync", protocol.SyncResult{Convs: []protocol.SyncConv{{Conv: "c1", Head: 4}, {Conv: "c2", Head: 42, Read: 40, Unread: 2, Acked: 41, Msgs: []natter.Message{testMsg}}}},
			`{"convs":[{"conv":"c1","head":4,"read":0,"unread":0,"acked":0,"more":false},{"conv":"c2","head":42,"read":40,"unread":2,"acked":41,"msgs":[` + mustJSON(t, testMsg) + `],"more":false}]}`},
		{"sync page", protocol.SyncResult{Convs: []protocol.SyncConv{{Conv: "c1", Head: 4}}, Next: "c1.0"}, `{"convs":[{"conv":"c1","head":4,"read":0,"unread":0,"acked":0,"more":false}],"next":"c1.0"}`},
		{"sync last page", protocol.SyncResult{UnreadTotal: new(uint64(3))}, `{"convs":[],"unread_total":3}`},
		{"conv list empty", protocol.ConvList{}, `{"convs":[]}`},
		{"members empty", protocol.MemberList{}, `{"members":[]}`},
		{"members", protocol.MemberList{Members: []string{"a", "b"}}, `{"members":["a","b"]}`},
		{"conversation", natter.Conversation{ID: "g_1", Kind: natter.KindGroup, Name: "T", CreatedBy: "a", CreatedAt: 1, Members: []string{"a"}, Head: 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frame := protocol.Result("r-1", tt.data)
			f := decodeServer(t, frame)
			if f.T != protocol.FrameRes || f.ID != "r-1" {
				t.Fatalf("frame %s decoded as T=%q ID=%q", frame, f.T, f.ID)
			}
			want := tt.want
			if want == "" {
				want = mustJSON(t, tt.data)
			}
			if string(f.Data) != want {
				t.Fatalf("data = %s, want %s", f.Data, want)
			}
		})
	}
}

func TestResultUnencodable(t *testing.T) {
	t.Parallel()
	f := decodeServer(t, protocol.Result("r", func() {}))
	if f.T != protocol.FrameErr || f.Err.Code != protocol.CodeInternal || f.Err.ID != "r" {
		t.Fatalf("got %+v, want an internal err frame", f)
	}
}

func TestResultRaw(t *testing.T) {
	t.Parallel()
	frame := protocol.ResultRaw("9", []byte(`{"members":["a"]}`))
	if want := `{"t":"res","id":"9","data":{"members":["a"]}}`; string(frame) != want {
		t.Fatalf("ResultRaw = %s, want %s", frame, want)
	}
	if got := string(protocol.ResultRaw("9", nil)); got != `{"t":"res","id":"9","data":{}}` {
		t.Fatalf("ResultRaw(nil) = %s", got)
	}
}

func TestErrRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, msg string
		code          protocol.Code
	}{
		{"with id", "12", "conv: required", protocol.CodeBadFrame},
		{"without id", "", "invalid JSON at byte 3", protocol.CodeBadJSON},
		{"escapes", `a"\b`, "tab\tnl\nquote\" bs\\ ctl\x01 del\x7f \u2029 é", protocol.CodeInternal},
		{"invalid utf8", "1", "bad \xff\xfe byte", protocol.CodeNotFound},
		{"empty msg", "1", "", protocol.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frame := protocol.Err(tt.id, tt.code, tt.msg)
			f := decodeServer(t, frame)
			want := &protocol.Error{ID: tt.id, Code: tt.code, Msg: viaJSON(t, tt.msg)}
			if f.T != protocol.FrameErr || f.ID != tt.id || !reflect.DeepEqual(f.Err, want) {
				t.Fatalf("%s decoded as %+v (Err %+v), want %+v", frame, f, f.Err, want)
			}
			if tt.id == "" && strings.Contains(string(frame), `"id"`) {
				t.Fatalf("%s has an id", frame)
			}
		})
	}
}

func TestErrFrame(t *testing.T) {
	t.Parallel()
	decodeErr := &protocol.Error{ID: "7", Code: protocol.CodeBadFrame, Msg: "conv: required"}
	tests := []struct {
		name string
		id   string
		err  error
		want protocol.Error
	}{
		{"protocol error", "3", &protocol.Error{Code: protocol.CodeNotMember, Msg: "no"}, protocol.Error{ID: "3", Code: protocol.CodeNotMember, Msg: "no"}},
		{"wrapped", "3", fmt.Errorf("edge: send: %w", &protocol.Error{Code: protocol.CodeForbidden, Msg: "from"}), protocol.Error{ID: "3", Code: protocol.CodeForbidden, Msg: "from"}},
		{"own id", "", decodeErr, *decodeErr},
		{"internal hidden", "4", errors.New("mongo: connection refused at 10.0.0.1"), protocol.Error{ID: "4", Code: protocol.CodeInternal, Msg: "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := decodeServer(t, protocol.ErrFrame(tt.id, tt.err))
			if f.Err == nil || *f.Err != tt.want {
				t.Fatalf("ErrFrame = %+v, want %+v", f.Err, tt.want)
			}
		})
	}
}

func TestPushRoundTrip(t *testing.T) {
	t.Parallel()
	raw := mustJSON(t, testMsg)
	frame := protocol.Push([]byte(raw))
	if want := `{"t":"msg","msg":` + raw + `}`; string(frame) != want {
		t.Fatalf("Push = %s, want %s", frame, want)
	}
	f := decodeServer(t, frame)
	if f.T != protocol.FrameMsg || f.Message == nil || !reflect.DeepEqual(*f.Message, testMsg) {
		t.Fatalf("decoded %+v (Message %+v), want %+v", f, f.Message, testMsg)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   protocol.HelloFrame
		want protocol.HelloFrame
	}{
		{"full", protocol.HelloFrame{User: "alice", Device: "d1", Session: "s_1", PingMS: 25000, MaxBody: 65536},
			protocol.HelloFrame{V: 1, User: "alice", Device: "d1", Session: "s_1", PingMS: 25000, MaxBody: 65536}},
		{"no device", protocol.HelloFrame{V: 1, User: "bob", Session: "s_\"2", PingMS: 1, MaxBody: 2},
			protocol.HelloFrame{V: 1, User: "bob", Session: "s_\"2", PingMS: 1, MaxBody: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frame := protocol.Hello(tt.in)
			f := decodeServer(t, frame)
			if f.T != protocol.FrameHello || f.Hello == nil || *f.Hello != tt.want {
				t.Fatalf("%s decoded as %+v, want %+v", frame, f.Hello, tt.want)
			}
		})
	}
	_, err := protocol.DecodeServer(protocol.Hello(protocol.HelloFrame{V: 2, User: "a"}))
	if protocol.CodeOf(err) != protocol.CodeBadVersion {
		t.Fatalf("hello v2: %v, want bad_version", err)
	}
}

func TestByeRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []protocol.ByeFrame{
		{Code: protocol.CloseGoingAway, Reason: "edge shutting down", Reconnect: true},
		{Code: protocol.CloseUnauthorized, Reason: "token expired"},
		{Code: protocol.CloseNormal},
	}
	for _, tt := range tests {
		t.Run(tt.Reason, func(t *testing.T) {
			t.Parallel()
			frame := protocol.Bye(tt.Code, tt.Reason, tt.Reconnect)
			f := decodeServer(t, frame)
			if f.T != protocol.FrameBye || f.Bye == nil || *f.Bye != tt {
				t.Fatalf("%s decoded as %+v, want %+v", frame, f.Bye, tt)
			}
		})
	}
}

func TestConvPushRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []protocol.ConvFrame{
		{Conv: "g_7f3a9c", Event: protocol.ConvRemoved},
		{Conv: "d_1", Event: protocol.ConvAdded},
		{Conv: "g_7f3a9c", Event: protocol.ConvAdded, By: "alice", Created: true},
		{Conv: "g_7f3a9c", Event: protocol.ConvRemoved, Rev: 4, By: "alice"},
		{Conv: "g_7f3a9c", Event: protocol.ConvMembersAdded, Rev: 5, By: "bob", Users: []string{"dave", "erin"}, N: 2, MemberCount: 9},
		{Conv: "g_7f3a9c", Event: protocol.ConvMembersRemoved, Rev: 6, By: "carol", N: 1000, MemberCount: 7},
		{Conv: "g_7f3a9c", Event: protocol.ConvRenamed, Rev: 7, By: "bob", Name: "Team \"B\" <ü>"},
		{Conv: "g_7f3a9c", Event: protocol.ConvRoles, Rev: 8, By: "alice", Owner: "bob", Admins: []string{"alice", "carol"}},
		{Conv: "g_7f3a9c", Event: protocol.ConvMuted, Rev: 9, By: "bob", Users: []string{"dave"}, N: 1, Until: 1767229200000},
		{Conv: "g_7f3a9c", Event: protocol.ConvMuted, Rev: 10, By: "bob", Users: []string{"dave"}, N: 1},
		{Conv: "g_7f3a9c", Event: protocol.ConvSettings, By: "bob", Settings: &natter.ConvSettings{MutedUntil: 1767229200000, Pinned: true, Archived: true, Cleared: 40}},
		{Conv: "g_7f3a9c", Event: protocol.ConvSettings, By: "bob", Settings: &natter.ConvSettings{}},
		{Conv: "g_7f3a9c", Event: protocol.ConvUpdated, Rev: 11, By: "bob", Description: "Ops \"team\"", AvatarURL: "https://x.test/a.png", Announce: true},
	} {
		frame := protocol.ConvPush(tt)
		f := decodeServer(t, frame)
		if f.T != protocol.FrameConv || f.Conv == nil || !reflect.DeepEqual(*f.Conv, tt) {
			t.Fatalf("%s decoded as %+v, want %+v", frame, f.Conv, tt)
		}
		var std protocol.ConvFrame
		if err := json.Unmarshal(frame, &std); err != nil || !reflect.DeepEqual(std, tt) {
			t.Fatalf("%s: encoding/json reads %+v (%v), want %+v", frame, std, err, tt)
		}
	}
	if _, err := protocol.DecodeServer([]byte(`{"t":"conv","conv":"g_1"}`)); protocol.CodeOf(err) != protocol.CodeBadFrame {
		t.Fatalf("conv frame without event: %v, want bad_frame", err)
	}
}

func TestDecodeServerInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, frame string
		code        protocol.Code
	}{
		{"empty", ``, protocol.CodeBadJSON},
		{"null", `null`, protocol.CodeBadJSON},
		{"syntax", `{"t":"res"`, protocol.CodeBadJSON},
		{"no t", `{"id":"1"}`, protocol.CodeBadFrame},
		{"res no id", `{"t":"res","data":{}}`, protocol.CodeBadFrame},
		{"res numeric id", `{"t":"res","id":1,"data":{}}`, protocol.CodeBadFrame},
		{"err no code", `{"t":"err","id":"1","msg":"x"}`, protocol.CodeBadFrame},
		{"err numeric code", `{"t":"err","id":"1","code":4000,"msg":"x"}`, protocol.CodeBadFrame},
		{"err object msg", `{"t":"err","id":"1","code":"internal","msg":{}}`, protocol.CodeBadFrame},
		{"msg no msg", `{"t":"msg"}`, protocol.CodeBadFrame},
		{"msg string msg", `{"t":"msg","msg":"hi"}`, protocol.CodeBadFrame},
		{"msg bad message", `{"t":"msg","msg":{"seq":"x"}}`, protocol.CodeBadFrame},
		{"hello no version", `{"t":"hello","user":"a"}`, protocol.CodeBadVersion},
		{"bye string code", `{"t":"bye","code":"going_away"}`, protocol.CodeBadFrame},
		{"bye no code", `{"t":"bye","reason":"x"}`, protocol.CodeBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := protocol.DecodeServer([]byte(tt.frame))
			if got := protocol.CodeOf(err); got != tt.code {
				t.Fatalf("DecodeServer = %+v, %v; want code %s", f, err, tt.code)
			}
		})
	}
}

func TestDecodeServerUnknownType(t *testing.T) {
	t.Parallel()
	// A newer server may push frames this client does not know.
	for _, frame := range []string{`{"t":"poll","conv":"c1","user":"bob"}`, `{"t":"receipt","code":{"x":1},"msg":5}`} {
		f, err := protocol.DecodeServer([]byte(frame))
		if err != nil || f.T == "" || f.Message != nil || f.Err != nil {
			t.Fatalf("DecodeServer(%s) = %+v, %v; want only T", frame, f, err)
		}
	}
}

func TestCheckBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		max  int
		code protocol.Code
	}{
		{"fits", "hello", 5, ""},
		{"over", "hello!", 5, protocol.CodeTooBig},
		{"default fits", strings.Repeat("x", protocol.DefaultMaxBody), 0, ""},
		{"default over", strings.Repeat("x", protocol.DefaultMaxBody+1), 0, protocol.CodeTooBig},
		{"bytes not runes", "éé", 3, protocol.CodeTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := protocol.CodeOf(protocol.CheckBody(tt.body, tt.max)); got != tt.code {
				t.Fatalf("CheckBody code = %q, want %q", got, tt.code)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		offered []string
		want    string
		code    protocol.Code
	}{
		{"none", nil, "", ""},
		{"empty header", []string{""}, "", ""},
		{"v1", []string{"natter.v1"}, "natter.v1", ""},
		{"list", []string{"natter.v2, natter.v1"}, "natter.v1", ""},
		{"headers", []string{"chat", "natter.v1"}, "natter.v1", ""},
		{"other", []string{"natter.v2"}, "", protocol.CodeBadVersion},
		{"case", []string{"Natter.V1"}, "", protocol.CodeBadVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := protocol.Negotiate(tt.offered...)
			if got != tt.want || protocol.CodeOf(err) != tt.code {
				t.Fatalf("Negotiate = %q, %v; want %q, code %q", got, err, tt.want, tt.code)
			}
		})
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	status := map[protocol.Code]int{
		protocol.CodeBadJSON: 400, protocol.CodeBadFrame: 400, protocol.CodeUnknownOp: 400,
		protocol.CodeBadVersion: 400, protocol.CodeUnauthorized: 401, protocol.CodeForbidden: 403,
		protocol.CodeNotMember: 403, protocol.CodeNotFound: 404, protocol.CodeConflict: 409,
		protocol.CodeTooBig: 413, protocol.CodeRateLimited: 429, protocol.CodeUnavailable: 503,
		protocol.CodeInternal: 500, "some_future_code": 500,
	}
	for code, want := range status {
		if got := code.HTTPStatus(); got != want {
			t.Errorf("%s.HTTPStatus() = %d (%s), want %d", code, got, http.StatusText(got), want)
		}
	}
	for _, code := range allCodes {
		want := code == protocol.CodeUnavailable || code == protocol.CodeRateLimited
		if code.Retryable() != want {
			t.Errorf("%s.Retryable() = %v", code, !want)
		}
	}
	if protocol.CodeOf(nil) != "" {
		t.Errorf("CodeOf(nil) != \"\"")
	}
}

func decodeServer(t *testing.T, frame []byte) *protocol.ServerFrame {
	t.Helper()
	if !json.Valid(frame) {
		t.Fatalf("frame is not valid JSON: %s", frame)
	}
	f, err := protocol.DecodeServer(frame)
	if err != nil {
		t.Fatalf("DecodeServer(%s): %v", frame, err)
	}
	return f
}

// viaJSON is s after a trip through encoding/json (invalid UTF-8 bytes
// become U+FFFD, one each).
func viaJSON(t testing.TB, s string) string {
	t.Helper()
	var out string
	if err := json.Unmarshal([]byte(mustJSON(t, s)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReactionPushRoundTrip(t *testing.T) {
	t.Parallel()
	for _, want := range []protocol.ReactionFrame{
		{Conv: "g_1", Ref: "m_1", Seq: 7, User: "bob", Emoji: "👍🏽", Count: 3},
		{Conv: "g_1", Ref: "m_1", Seq: 7, User: "bob", Emoji: `<"&>`, Removed: true},
	} {
		b := protocol.ReactionPush(want)
		f, err := protocol.DecodeServer(b)
		if err != nil || f.T != protocol.FrameReaction || f.Reaction == nil || *f.Reaction != want {
			t.Fatalf("%s: %+v %v, want %+v", b, f, err, want)
		}
		var viaJSON protocol.ReactionFrame
		if err := json.Unmarshal(b, &viaJSON); err != nil || viaJSON != want {
			t.Fatalf("%s: encoding/json reads %+v %v", b, viaJSON, err)
		}
	}
}
