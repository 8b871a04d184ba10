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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

const adminToken = "admin-test-credential-0123456789abcdef"

// enforceBound is how soon every edge must enforce a revocation or ban.
const enforceBound = 2 * time.Second

// adminMesh is a dev node serving the admin API and one more edge.
func adminMesh(t *testing.T) (dev, other *node.Node) {
	t.Helper()
	dev = startNode(t, node.Config{Mode: node.ModeDev, Edge: edgeConfig(), Admin: admin.Config{Token: adminToken}})
	other = startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: dev.NATSURL(), Edge: edgeConfig()})
	return dev, other
}

// call posts body to an admin path of n with the bearer cred ("" = none)
// and returns the status and the decoded answer.
func call(t testing.TB, n *node.Node, path, cred, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	return doJSON(t, req)
}

func doJSON(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", req.Method, req.URL, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// restList lists conversations over REST with tok: status and error code.
func restList(t testing.TB, n *node.Node, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.Addr()+"/v1/conversations/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Code string `json:"code"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m.Code
}

// dialTok opens a WebSocket with tok (and device, when not empty) and
// returns it after its hello, or the refusal's status and code.
func dialTok(t testing.TB, n *node.Node, tok, device string) (*rawConn, int, string) {
	t.Helper()
	h := bearer(tok)
	if device != "" {
		h.Set(protocol.HeaderDevice, device)
	}
	c, resp, err := dialRaw(t, wsURL(n), h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		defer resp.Body.Close()
		var m struct {
			Code string `json:"code"`
		}
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &m)
		return nil, resp.StatusCode, m.Code
	}
	if f := c.next(); f.T != protocol.FrameHello {
		t.Fatalf("want hello, got %+v", f)
	}
	return c, http.StatusSwitchingProtocols, ""
}

func mustDialTok(t testing.TB, n *node.Node, tok, device string) *rawConn {
	t.Helper()
	c, status, code := dialTok(t, n, tok, device)
	if c == nil {
		t.Fatalf("dial refused: %d %s", status, code)
	}
	return c
}

// closedWithin waits for c to be closed by the edge with code, within
// enforceBound (plus the read's slack on a loaded machine).
func closedWithin(t testing.TB, c *rawConn, code int, start time.Time) {
	t.Helper()
	got, reason := c.closeCode()
	if got != code {
		t.Fatalf("closed with %d %q, want %d", got, reason, code)
	}
	if d := time.Since(start); d > enforceBound {
		t.Fatalf("closed after %v, want within %v", d, enforceBound)
	}
}

// refusedWithin polls until a new WebSocket and a REST call with tok are
// both refused with status and code by n, within enforceBound.
func refusedWithin(t testing.TB, n *node.Node, tok string, status int, code string, start time.Time) {
	t.Helper()
	testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
		if st, c := restList(t, n, tok); st != status || c != code {
			return fmt.Errorf("REST: %d %s, want %d %s", st, c, status, code)
		}
		if ws, st, c := dialTok(t, n, tok, ""); st != status || c != code {
			if ws != nil {
				ws.conn.Close()
			}
			return fmt.Errorf("WebSocket: %d %s, want %d %s", st, c, status, code)
		}
		return nil
	})
	t.Logf("refused after %v", time.Since(start))
}

func accepted(t testing.TB, n *node.Node, tok string) {
	t.Helper()
	if st, c := restList(t, n, tok); st != http.StatusOK {
		t.Fatalf("REST refused: %d %s", st, c)
	}
	mustDialTok(t, n, tok, "").conn.Close()
}

// TestRevokeTokenOnAnotherEdge: a token revoked by id through one node's
// admin API is refused by another edge within 2 s, on WebSocket and REST,
// its live session there is closed (4003), other tokens of the user go
// on, and an edge started afterwards refuses it from its first request.
func TestRevokeTokenOnAnotherEdge(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	stolen := token(t, "alice", func(c *auth.MintClaims) { c.ID = "stolen-1" })
	fresh := token(t, "alice")
	live := mustDialTok(t, other, stolen, "")
	keep := mustDialTok(t, other, fresh, "")
	accepted(t, other, stolen)

	start := time.Now()
	if st, m := call(t, dev, admin.PathRevoke, adminToken, `{"jti":"stolen-1","reason":"reported stolen"}`); st != http.StatusOK {
		t.Fatalf("revoke: %d %v", st, m)
	}
	closedWithin(t, live, protocol.CloseTokenRevoked, start)
	refusedWithin(t, other, stolen, http.StatusUnauthorized, string(protocol.CodeTokenRevoked), start)
	accepted(t, other, fresh)
	// A browser's auth frame with the revoked token: err token_revoked,
	// then close 4003.
	ab, _, err := dialRaw(t, wsURL(other), nil)
	if err != nil {
		t.Fatal(err)
	}
	ab.write(fmt.Sprintf(`{"op":"auth","id":"a","token":%q}`, stolen))
	if f := ab.next(); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeTokenRevoked || !strings.Contains(f.Err.Msg, "stolen-1") {
		t.Fatalf("auth frame with a revoked token: %+v", f)
	}
	if code, _ := ab.closeCode(); code != protocol.CloseTokenRevoked {
		t.Fatalf("auth frame with a revoked token: close %d, want %d", code, protocol.CloseTokenRevoked)
	}
	keep.write(`{"op":"ping","id":"p"}`)
	if f := keep.reply("p"); f.T != protocol.FrameRes {
		t.Fatalf("other token's session: %+v", f)
	}

	// An edge (re)started after the revocation enforces it at once.
	if err := other.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: dev.NATSURL(), Edge: edgeConfig()})
	if st, c := restList(t, again, stolen); st != http.StatusUnauthorized || c != string(protocol.CodeTokenRevoked) {
		t.Fatalf("restarted edge, REST: %d %s", st, c)
	}
	if _, st, c := dialTok(t, again, stolen, ""); st != http.StatusUnauthorized || c != string(protocol.CodeTokenRevoked) {
		t.Fatalf("restarted edge, WebSocket: %d %s", st, c)
	}
	accepted(t, again, fresh)
}

// TestRevokeByUserAndDevice: revoking a user refuses every token issued
// before the revocation (live sessions closed), not one issued after;
// revoking a device refuses that device's tokens and sessions only.
func TestRevokeByUserAndDevice(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)

	// By device: bob's token for d1 and a session that named d1 with a
	// token without dev claim; d2 goes on.
	d1 := token(t, "bob", func(c *auth.MintClaims) { c.Device = "d1" })
	d2 := token(t, "bob", func(c *auth.MintClaims) { c.Device = "d2" })
	plain := token(t, "bob")
	onD1 := mustDialTok(t, other, plain, "d1")
	onD2 := mustDialTok(t, other, d2, "")
	start := time.Now()
	if st, m := call(t, dev, admin.PathRevoke, adminToken, `{"user":"bob","device":"d1"}`); st != http.StatusOK {
		t.Fatalf("revoke device: %d %v", st, m)
	}
	closedWithin(t, onD1, protocol.CloseTokenRevoked, start)
	refusedWithin(t, other, d1, http.StatusUnauthorized, string(protocol.CodeTokenRevoked), start)
	accepted(t, other, d2)
	onD2.write(`{"op":"ping","id":"p"}`)
	if f := onD2.reply("p"); f.T != protocol.FrameRes {
		t.Fatalf("d2 session: %+v", f)
	}

	// By user: every token of carol issued before now.
	old := token(t, "carol")
	live := mustDialTok(t, other, old, "")
	start = time.Now()
	st, m := call(t, dev, admin.PathRevoke, adminToken, `{"user":"carol","reason":"password changed"}`)
	if st != http.StatusOK {
		t.Fatalf("revoke user: %d %v", st, m)
	}
	closedWithin(t, live, protocol.CloseTokenRevoked, start)
	refusedWithin(t, other, old, http.StatusUnauthorized, string(protocol.CodeTokenRevoked), start)
	// A token issued at or after the revocation's time (whole seconds,
	// rounded up) is accepted.
	before := int64(m["entry"].(map[string]any)["before"].(float64))
	testenv.CheckFor(t, 3*time.Second, 20*time.Millisecond, func() error {
		if now := time.Now().Unix(); now < before {
			return fmt.Errorf("clock at %d, revocation before %d", now, before)
		}
		return nil
	})
	accepted(t, other, token(t, "carol"))
}

// TestBanClosesSessions: a ban closes the user's live sessions on every
// edge (4004, with the reason), refuses new ones (403 banned) until the
// unban, and a ban with an expiry ends by itself.
func TestBanClosesSessions(t *testing.T) {
	t.Parallel()
	dev, other := adminMesh(t)
	tok := token(t, "dave")
	onDev, onOther := mustDialTok(t, dev, tok, ""), mustDialTok(t, other, tok, "")
	start := time.Now()
	if st, m := call(t, dev, admin.PathBan, adminToken, `{"user":"dave","reason":"spam"}`); st != http.StatusOK {
		t.Fatalf("ban: %d %v", st, m)
	}
	for _, c := range []*rawConn{onDev, onOther} {
		// The bye frame names the code and the reason.
		f, err := c.read()
		if err != nil || f.T != protocol.FrameBye || f.Bye.Code != protocol.CloseBanned || !strings.Contains(f.Bye.Reason, "spam") {
			t.Fatalf("want bye 4004 with the reason, got %+v, %v", f, err)
		}
		closedWithin(t, c, protocol.CloseBanned, start)
	}
	refusedWithin(t, other, tok, http.StatusForbidden, string(protocol.CodeBanned), start)
	refusedWithin(t, dev, token(t, "dave"), http.StatusForbidden, string(protocol.CodeBanned), start)

	if st, m := call(t, dev, admin.PathUnban, adminToken, `{"user":"dave"}`); st != http.StatusOK {
		t.Fatalf("unban: %d %v", st, m)
	}
	testenv.CheckFor(t, enforceBound, 20*time.Millisecond, func() error {
		if st, c := restList(t, other, tok); st != http.StatusOK {
			return fmt.Errorf("after unban: %d %s", st, c)
		}
		return nil
	})
	accepted(t, other, tok)

	// A ban with an expiry lapses without an unban.
	until := time.Now().Add(2 * time.Second).Unix()
	if st, m := call(t, dev, admin.PathBan, adminToken, fmt.Sprintf(`{"user":"dave","until":%d}`, until)); st != http.StatusOK {
		t.Fatalf("ban until: %d %v", st, m)
	}
	refusedWithin(t, other, tok, http.StatusForbidden, string(protocol.CodeBanned), time.Now())
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if st, c := restList(t, other, tok); st != http.StatusOK {
			return fmt.Errorf("after the ban's expiry: %d %s", st, c)
		}
		return nil
	})
}

// TestAdminAPIRefusesUserTokens: the admin API takes only the admin
// credential (not a user token, not nothing, not another string), answers
// a bad request with a code naming it, and publishes every accepted call
// as an audit event on EVENTS.
func TestAdminAPIRefusesUserTokens(t *testing.T) {
	t.Parallel()
	dev := startNode(t, node.Config{Mode: node.ModeDev, Edge: edgeConfig(), Admin: admin.Config{Token: adminToken}})
	body := `{"user":"erin"}`
	for name, cred := range map[string]string{
		"none":       "",
		"user token": token(t, "erin"),
		"wrong":      strings.Repeat("x", len(adminToken)),
		"prefix":     adminToken[:len(adminToken)-1],
	} {
		for _, path := range []string{admin.PathRevoke, admin.PathBan, admin.PathUnban, admin.PathSessions, admin.PathDisconnect,
			admin.PathConvInspect, admin.PathConvFreeze, admin.PathConvUnfreeze, admin.PathErase, admin.PathConvDelete} {
			st, m := call(t, dev, path, cred, body)
			if st != http.StatusUnauthorized || m["code"] != "unauthorized" {
				t.Errorf("%s on %s: %d %v, want 401 unauthorized", name, path, st, m)
			}
		}
	}
	if _, m := call(t, dev, admin.PathBan, token(t, "erin"), body); !strings.Contains(fmt.Sprint(m["msg"]), "user tokens") {
		t.Errorf("user token refusal %v does not say user tokens are not accepted", m)
	}
	// Nothing was written: erin is not banned.
	accepted(t, dev, token(t, "erin"))

	for _, bad := range []struct{ path, body, code string }{
		{admin.PathRevoke, `{}`, "bad_frame"},
		{admin.PathRevoke, `{"jti":"x","user":"erin"}`, "bad_frame"},
		{admin.PathBan, `{"user":"no spaces"}`, "bad_frame"},
		{admin.PathBan, `{"user":"erin","until":1}`, "bad_frame"},
		{admin.PathBan, `{"user":"erin","forever":true}`, "bad_json"},
		{admin.PathBan, `not json`, "bad_json"},
	} {
		if st, m := call(t, dev, bad.path, adminToken, bad.body); st != http.StatusBadRequest || m["code"] != bad.code {
			t.Errorf("%s %s: %d %v, want 400 %s", bad.path, bad.body, st, m, bad.code)
		}
	}

	if st, m := call(t, dev, admin.PathBan, adminToken, `{"user":"erin","reason":"audit me"}`); st != http.StatusOK {
		t.Fatalf("ban: %d %v", st, m)
	}
	nc, err := nats.Connect(dev.NATSURL())
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
	raw, err := s.GetLastMsgForSubject(ctx, subjects.Event(admin.EventBan, admin.AuditConv))
	if err != nil {
		t.Fatalf("audit event: %v", err)
	}
	var ev natter.Event
	if err := json.Unmarshal(raw.Data, &ev); err != nil || ev.Kind != admin.EventBan || !strings.Contains(string(ev.Data), "audit me") {
		t.Fatalf("audit event %s: %+v, %v", raw.Data, ev, err)
	}
	if strings.Contains(string(raw.Data), adminToken) {
		t.Fatal("the audit event holds the admin credential")
	}
}

// TestAdminAPIOffWithoutCredential: with no admin credential configured,
// the admin API refuses every call.
func TestAdminAPIOffWithoutCredential(t *testing.T) {
	t.Parallel()
	dev := startNode(t, node.Config{Mode: node.ModeDev})
	for _, cred := range []string{"", adminToken} {
		if st, m := call(t, dev, admin.PathBan, cred, `{"user":"erin"}`); st != http.StatusForbidden || m["code"] != "admin_disabled" {
			t.Errorf("credential %q: %d %v, want 403 admin_disabled", cred, st, m)
		}
	}
}
