package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// TestPresenceAfterEdgeKill: bob is connected to an edge process only;
// alice, on another edge, watches him. The edge is killed with SIGKILL:
// alice gets bob offline within the documented bound (30 s: the default
// PresenceLease), with no help from the dead edge.
func TestPresenceAfterEdgeKill(t *testing.T) {
	t.Parallel()
	const secret = "presence-test-secret-0123456789abcdef"
	data := t.TempDir()
	dev := startDev(t, data, "--jwt-secret", secret)
	edge := startProc(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret)
	mintWith := func(user string) string {
		out, err := exec.Command(binary, "token", "--jwt-secret", secret, "--user", user).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	alice, bob := mintWith("alice"), mintWith("bob")
	if code, b := call(t, "POST", dev.url("/v1/conversations"), alice, `{"kind":"direct","with":"bob"}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	dial := func(addr, tok string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+protocol.Path, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		if _, hello, err := ws.ReadMessage(); err != nil || !strings.Contains(string(hello), `"hello"`) {
			t.Fatalf("hello: %v %s", err, hello)
		}
		return ws
	}
	bobWS := dial(edge.ready["http"], bob)
	_ = bobWS
	aliceWS := dial(dev.ready["http"], alice)
	if err := aliceWS.WriteMessage(websocket.TextMessage, []byte(`{"op":"presence.sub","id":"s","users":["bob"]}`)); err != nil {
		t.Fatal(err)
	}
	// bob's state: from the reply, or a push if his edge announced later.
	online := false
	for !online {
		f := readFrame(t, aliceWS, 10*time.Second)
		switch f.T {
		case protocol.FrameRes:
			var res protocol.PresenceResult
			_ = json.Unmarshal(f.Data, &res)
			online = len(res.Users) == 1 && res.Users[0].Online
		case protocol.FramePresence:
			online = f.Presence.Online
		case protocol.FrameErr:
			t.Fatalf("presence.sub: %+v", f.Err)
		}
	}
	killed := time.Now()
	if err := edge.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		f := readFrame(t, aliceWS, 35*time.Second)
		if f.T == protocol.FramePresence && f.Presence.User == "bob" && !f.Presence.Online {
			if d := time.Since(killed); d > 30*time.Second {
				t.Fatalf("bob offline %v after the kill (bound 30s)", d)
			} else {
				t.Logf("bob offline %v after the kill, last_seen %d", d, f.Presence.LastSeen)
			}
			if f.Presence.LastSeen == 0 || f.Presence.LastSeen > time.Now().UnixMilli() {
				t.Fatalf("last_seen %d", f.Presence.LastSeen)
			}
			return
		}
	}
}

func readFrame(t *testing.T, ws *websocket.Conn, wait time.Duration) *protocol.ServerFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	f, err := protocol.DecodeServer(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return f
}
