package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

// TestBadInputOverWebSocket sends every kind of bad frame on one socket and
// checks each gets its error code, nothing is stored, and another user's
// socket keeps working.
func TestBadInputOverWebSocket(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	bob := mustDial(t, m.dev, "bob")
	carol := mustDial(t, m.dev, "carol")

	alice.write(`{"op":"conv.create","id":"c","kind":"direct","with":"bob"}`)
	f := alice.reply("c")
	if f.T != protocol.FrameRes {
		t.Fatalf("create: %+v", f.Err)
	}
	var conv natter.Conversation
	_ = json.Unmarshal(f.Data, &conv)

	big := strings.Repeat("x", 64<<10+1)
	cases := []struct {
		name  string
		c     *rawConn
		frame string
		id    string
		code  protocol.Code
	}{
		{"malformed json", alice, `{"op":"send","id":"1",`, "", protocol.CodeBadJSON},
		{"not an object", alice, `[1,2,3]`, "", protocol.CodeBadJSON},
		{"unknown op", alice, `{"op":"fly","id":"2"}`, "2", protocol.CodeUnknownOp},
		{"missing request id", alice, `{"op":"ping"}`, "", protocol.CodeBadFrame},
		{"missing body", alice, fmt.Sprintf(`{"op":"send","id":"3","conv":%q,"cmid":"a1"}`, conv.ID), "3", protocol.CodeBadFrame},
		{"missing conv", alice, `{"op":"send","id":"4","cmid":"a1","body":"hi"}`, "4", protocol.CodeBadFrame},
		{"bad cmid", alice, fmt.Sprintf(`{"op":"send","id":"5","conv":%q,"cmid":"a b","body":"hi"}`, conv.ID), "5", protocol.CodeBadFrame},
		{"body over the limit", alice, fmt.Sprintf(`{"op":"send","id":"6","conv":%q,"cmid":"a2","body":%q}`, conv.ID, big), "6", protocol.CodeTooBig},
		{"not a member", carol, fmt.Sprintf(`{"op":"send","id":"7","conv":%q,"cmid":"a3","body":"hi"}`, conv.ID), "7", protocol.CodeNotMember},
		{"history not a member", carol, fmt.Sprintf(`{"op":"history","id":"8","conv":%q}`, conv.ID), "8", protocol.CodeNotMember},
		{"unknown conversation", alice, `{"op":"send","id":"9","conv":"g_nope","cmid":"a4","body":"hi"}`, "9", protocol.CodeNotMember},
		{"sender differs from token", alice, fmt.Sprintf(`{"op":"send","id":"10","conv":%q,"cmid":"a5","body":"hi","from":"bob"}`, conv.ID), "10", protocol.CodeForbidden},
		{"members.add on direct", alice, fmt.Sprintf(`{"op":"members.add","id":"11","conv":%q,"users":["carol"]}`, conv.ID), "11", protocol.CodeForbidden},
		{"auth twice", alice, `{"op":"auth","id":"12","token":"x"}`, "12", protocol.CodeBadFrame},
	}
	for _, tc := range cases {
		tc.c.write(tc.frame)
		f := tc.c.reply(tc.id)
		if f.T != protocol.FrameErr || f.Err.Code != tc.code || f.Err.ID != tc.id {
			t.Errorf("%s: want err %s id %q, got %+v %+v", tc.name, tc.code, tc.id, f, f.Err)
			continue
		}
		if f.Err.Msg == "" {
			t.Errorf("%s: error without a message", tc.name)
		}
	}

	// Other users are unaffected: a valid send reaches bob.
	alice.write(fmt.Sprintf(`{"op":"send","id":"ok","conv":%q,"cmid":"good","body":"hello bob"}`, conv.ID))
	if f := alice.reply("ok"); f.T != protocol.FrameRes {
		t.Fatalf("valid send after bad input: %+v", f.Err)
	}
	for {
		f := bob.next()
		if f.T == protocol.FrameMsg {
			if f.Message.Body != "hello bob" || f.Message.Seq != 1 {
				t.Fatalf("bob got %+v", f.Message)
			}
			break
		}
	}
	// Nothing half-stored: exactly the one good message in the log and the store.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		n, err := m.dev.Store().CountMessages(context.Background(), conv.ID)
		if err != nil || n != 1 {
			return fmt.Errorf("stored %d messages (%v), want 1", n, err)
		}
		return nil
	})

	// A frame over max_body + overhead is closed with 1009 before parsing.
	huge := strings.Repeat("y", 64<<10+protocol.FrameOverhead+1)
	alice.write(fmt.Sprintf(`{"op":"send","id":"13","conv":%q,"cmid":"a6","body":%q}`, conv.ID, huge))
	if code, _ := alice.closeCode(); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: close %d, want 1009", code)
	}
	// bob still works.
	bob.write(`{"op":"ping","id":"p"}`)
	if f := bob.reply("p"); f.T != protocol.FrameRes {
		t.Fatalf("bob after alice's close: %+v", f)
	}
}

// TestBadHandshake covers token, origin and version failures at upgrade and
// in the auth frame.
func TestBadHandshake(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	ec.AuthTimeout = 300 * time.Millisecond
	m := newMesh(t, meshOpts{edge: &ec})
	url := wsURL(m.dev)

	otherKey := auth.Key{ID: "k9", Alg: auth.AlgHS256, Secret: []byte("another-secret-0123456789abcdef-xyz")}
	unknownKid, _ := auth.Mint(otherKey, nil, auth.MintClaims{User: "alice", Audience: "natter-test", TTL: time.Hour})
	noneTok := noneToken(`{"sub":"alice","aud":"natter-test","exp":` + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + `}`)

	cases := []struct {
		name   string
		hdr    http.Header
		status int
		code   string
		want   string // in the message
	}{
		{"expired token", bearer(expiredToken(t, "alice")), 401, "unauthorized", "expired"},
		{"alg none", bearer(noneTok), 401, "unauthorized", "none"},
		{"unknown kid", bearer(unknownKid), 401, "unauthorized", "k9"},
		{"wrong audience", bearer(token(t, "alice", func(c *auth.MintClaims) { c.Audience = "someone-else" })), 401, "unauthorized", "aud"},
		{"garbage token", bearer("not.a.jwt"), 401, "unauthorized", ""},
		{"disallowed origin", http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + token(t, "alice")}}, 403, "forbidden", "evil.example"},
		{"wrong subprotocol", http.Header{"Sec-WebSocket-Protocol": {"natter.v9"}, "Authorization": {"Bearer " + token(t, "alice")}}, 400, "bad_version", "natter.v1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dialRaw(t, url, tc.hdr)
			if err == nil {
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status %v, want %d (%v)", resp, tc.status, err)
			}
			b, _ := io.ReadAll(resp.Body)
			var body struct{ Code, Msg string }
			if json.Unmarshal(b, &body) != nil || body.Code != tc.code || !strings.Contains(strings.ToLower(body.Msg), tc.want) {
				t.Fatalf("body %s, want code %s mentioning %q", b, tc.code, tc.want)
			}
		})
	}

	t.Run("allowed origin", func(t *testing.T) {
		c, _, err := dialRaw(t, url, http.Header{"Origin": {"https://app.example"}, "Authorization": {"Bearer " + token(t, "alice")}})
		if err != nil {
			t.Fatal(err)
		}
		if f := c.next(); f.T != protocol.FrameHello {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("auth frame ok", func(t *testing.T) {
		c, _, err := dialRaw(t, url, http.Header{"Sec-WebSocket-Protocol": {protocol.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		if c.conn.Subprotocol() != protocol.Subprotocol {
			t.Fatalf("subprotocol %q", c.conn.Subprotocol())
		}
		c.write(fmt.Sprintf(`{"op":"auth","id":"a","token":%q,"device":"phone"}`, token(t, "alice")))
		if f := c.next(); f.T != protocol.FrameHello || f.Hello.Device != "phone" {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("auth frame expired", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.write(fmt.Sprintf(`{"op":"auth","id":"a","token":%q}`, expiredToken(t, "alice")))
		if f := c.next(); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeUnauthorized {
			t.Fatalf("%+v", f)
		}
		if code, _ := c.closeCode(); code != protocol.CloseUnauthorized {
			t.Fatalf("close %d, want %d", code, protocol.CloseUnauthorized)
		}
	})
	t.Run("first frame not auth", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.write(`{"op":"ping","id":"p"}`)
		if code, _ := c.closeCode(); code != protocol.ClosePolicy {
			t.Fatalf("close %d, want %d", code, protocol.ClosePolicy)
		}
	})
	t.Run("no auth frame", func(t *testing.T) {
		c, _, err := dialRaw(t, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := c.closeCode(); code != protocol.CloseAuthTimeout {
			t.Fatalf("close %d, want %d", code, protocol.CloseAuthTimeout)
		}
	})
}

// noneToken builds an unsigned alg=none token by hand.
func noneToken(payload string) string {
	enc := func(s string) string {
		return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(b64(s)), "=")
	}
	return enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(payload) + "."
}

// TestRateLimit floods one socket past its token bucket: the excess gets
// rate_limited error frames (nothing done), the socket stays open, and
// another user's socket is unaffected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	ec.Rate, ec.Burst = 1, 5
	m := newMesh(t, meshOpts{edge: &ec})
	flood := mustDial(t, m.dev, "flooder")
	calm := mustDial(t, m.dev, "calm")
	const n = 30
	for i := 0; i < n; i++ {
		flood.write(fmt.Sprintf(`{"op":"ping","id":"f%d"}`, i))
	}
	ok, limited := 0, 0
	for i := 0; i < n; i++ {
		f := flood.reply(fmt.Sprintf("f%d", i))
		switch {
		case f.T == protocol.FrameRes:
			ok++
		case f.Err.Code == protocol.CodeRateLimited:
			limited++
		default:
			t.Fatalf("unexpected %+v", f.Err)
		}
	}
	if ok < 5 || ok > 7 || limited != n-ok {
		t.Fatalf("ok %d limited %d: want the burst (5, maybe one refill) through and the rest limited", ok, limited)
	}
	calm.write(`{"op":"ping","id":"c"}`)
	if f := calm.reply("c"); f.T != protocol.FrameRes {
		t.Fatalf("calm user limited: %+v", f.Err)
	}
}
