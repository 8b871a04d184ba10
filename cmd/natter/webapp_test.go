package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// httpDo sends one request with headers (Host among them, if given) and
// returns the status, the headers and the body.
func httpDo(t *testing.T, method, url, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestWebAppServing: natter dev serves the web app at / and answers POST
// /dev/token with a token its edge accepts; natter edge serves the app only
// with --web-app and never has the token endpoint; natter dev
// --web-app=false keeps the token endpoint but serves no app. The app's
// own origin passes the edge's Origin check only where the app is served.
func TestWebAppServing(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dev := startDev(t, data)
	if dev.ready["app"] != dev.url("/") {
		t.Errorf("ready line app=%q, want %q", dev.ready["app"], dev.url("/"))
	}
	secret := strings.Repeat("k", 40)
	_, plain := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret)
	_, withApp := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret, "--web-app")
	noApp := startDev(t, t.TempDir(), "--web-app=false")

	type want struct{ app, token bool }
	for name, tc := range map[string]struct {
		addr string
		want want
	}{
		"dev":               {dev.ready["http"], want{app: true, token: true}},
		"dev web-app=false": {noApp.ready["http"], want{app: false, token: true}},
		"edge":              {plain, want{app: false, token: false}},
		"edge --web-app":    {withApp, want{app: true, token: false}},
	} {
		base := "http://" + tc.addr
		code, hdr, body := httpDo(t, "GET", base+"/", "", nil)
		if got := code == 200 && strings.Contains(body, "<title>natter</title>"); got != tc.want.app {
			t.Errorf("%s: GET / = %d %.80q, want the app: %v", name, code, body, tc.want.app)
		}
		if tc.want.app {
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("%s: GET / Content-Type %q", name, ct)
			}
			if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("%s: GET / CSP %q", name, csp)
			}
			if code, _, _ := httpDo(t, "GET", base+"/", "", map[string]string{"If-None-Match": hdr.Get("ETag")}); code != 304 {
				t.Errorf("%s: GET / with its ETag = %d, want 304", name, code)
			}
		} else if code != 404 || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s: GET / = %d %s, want 404 not_found", name, code, body)
		}
		// The app's routes come after the others.
		if code, _, _ := httpDo(t, "GET", base+"/readyz", "", nil); code != 200 {
			t.Errorf("%s: GET /readyz = %d", name, code)
		}
		if code, _, body := httpDo(t, "GET", base+"/no-such-file.js", "", nil); code != 404 || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s: GET /no-such-file.js = %d %s", name, code, body)
		}

		code, _, body = httpDo(t, "POST", base+"/dev/token", `{"user":"alice"}`, nil)
		if !tc.want.token {
			if code != 404 {
				t.Errorf("%s: POST /dev/token = %d %s, want 404", name, code, body)
			}
			continue
		}
		var tok struct{ Token, User string }
		if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" || tok.User != "alice" {
			t.Fatalf("%s: POST /dev/token = %d %s", name, code, body)
		}
		if code, body := call(t, "GET", base+"/v1/conversations", tok.Token, ""); code != 200 {
			t.Errorf("%s: the dev token is refused: %d %s", name, code, body)
		}
	}

	base := dev.url("")
	for _, tc := range []struct {
		name, body string
		hdr        map[string]string
		code       int
		want       string
	}{
		{"bad user", `{"user":"a.b"}`, nil, 400, `"code":"bad_frame","msg":"user: `},
		{"no user", `{}`, nil, 400, `"code":"bad_frame","msg":"user: `},
		{"bad device", `{"user":"bob","device":"x y"}`, nil, 400, `"msg":"device: `},
		{"not json", `user=bob`, nil, 400, `"code":"bad_json"`},
		{"DNS name", `{"user":"bob"}`, map[string]string{"Host": "rebound.example:8080"}, 403, `answers only requests to an IP address or localhost`},
		{"localhost", `{"user":"bob"}`, map[string]string{"Host": "localhost:8080", "Origin": "http://localhost:8080"}, 200, `"user":"bob"`},
		{"other origin", `{"user":"bob"}`, map[string]string{"Origin": "https://evil.example"}, 403, `origin https://evil.example is not allowed`},
		{"own origin", `{"user":"bob"}`, map[string]string{"Origin": base}, 200, `"token":`},
	} {
		if code, _, body := httpDo(t, "POST", base+"/dev/token", tc.body, tc.hdr); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: POST /dev/token = %d %s, want %d %s", tc.name, code, body, tc.code, tc.want)
		}
	}

	// A browser page of the edge's own origin may open a WebSocket where
	// the app is served, and only there.
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{dev.ready["http"], true}, {withApp, true}, {plain, false}, {noApp.ready["http"], false}} {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+tc.addr+protocol.Path, http.Header{"Origin": {"http://" + tc.addr}})
		if err == nil {
			ws.Close()
		}
		if (err == nil) != tc.ok || (!tc.ok && (resp == nil || resp.StatusCode != 403)) {
			t.Errorf("WebSocket from http://%s to itself: err %v (resp %v), want allowed: %v", tc.addr, err, resp != nil, tc.ok)
		}
	}
}
