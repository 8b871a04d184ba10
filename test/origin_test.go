package test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
)

// TestCrossSiteWebSocketHijacking: a page on another site that opens a
// WebSocket to the edge (a browser sends its Origin and cannot forge it) is
// refused at the upgrade, 403 forbidden, before any frame: with a token
// header, without one (auth frame to follow), and for every near miss of
// the allowed origin. The allowed origin and native clients (no Origin)
// pass.
func TestCrossSiteWebSocketHijacking(t *testing.T) {
	t.Parallel()
	dev := startNode(t, node.Config{Mode: node.ModeDev}) // allows https://app.example
	for _, origin := range []string{
		"https://evil.example",
		"null", // sandboxed iframes, file: pages
		"https://app.example.evil.example",
		"https://evil.example/https://app.example",
		"http://app.example",       // other scheme
		"https://app.example:8443", // other port
		"https://APP.example",
		"https://app.example/",
	} {
		for _, withToken := range []bool{true, false} {
			h := http.Header{"Origin": {origin}, "Sec-WebSocket-Protocol": {protocol.Subprotocol}}
			if withToken {
				h.Set("Authorization", "Bearer "+token(t, "alice"))
			}
			c, resp, err := dialRaw(t, wsURL(dev), h)
			if err == nil {
				c.conn.Close()
				t.Errorf("origin %q (token %v): upgraded", origin, withToken)
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("origin %q (token %v): %v, want 403", origin, withToken, err)
				continue
			}
			var body struct{ Code string }
			b, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(b, &body) != nil || body.Code != string(protocol.CodeForbidden) {
				t.Errorf("origin %q: body %s, want code forbidden", origin, b)
			}
		}
	}
	for _, h := range []http.Header{
		{"Origin": {"https://app.example"}, "Authorization": {"Bearer " + token(t, "alice")}},
		{"Authorization": {"Bearer " + token(t, "alice")}},
	} {
		c, _, err := dialRaw(t, wsURL(dev), h)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if f := c.next(); f.T != protocol.FrameHello {
			t.Fatalf("%+v", f)
		}
	}
}
