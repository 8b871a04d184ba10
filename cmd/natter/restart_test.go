package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

func mint(t *testing.T, data, user string) string {
	t.Helper()
	out, err := exec.Command(binary, "token", "--data", data, "--user", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func call(t *testing.T, method, url, tok, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRestartKeepsData stores a conversation and a message, stops natter dev
// with SIGTERM while a WebSocket client is connected (the client is told to
// reconnect, the process exits 0 within 10s), starts it again on the same
// data dir and reads everything back.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startDev(t, data, "--lame-duck", "500ms")
	tok := mint(t, data, "alice")

	code, b := call(t, "POST", p.url("/v1/conversations"), tok, `{"kind":"group","name":"team","members":["bob"]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	var conv natter.Conversation
	_ = json.Unmarshal(b, &conv)
	code, b = call(t, "POST", p.url("/v1/conversations/"+conv.ID+"/messages"), tok, `{"cmid":"m1","body":"kept across restarts"}`)
	if code != 201 {
		t.Fatalf("send: %d %s", code, b)
	}
	var ack natter.Ack
	_ = json.Unmarshal(b, &ack)

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.ready["http"]+protocol.Path, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, hello, err := ws.ReadMessage(); err != nil || !strings.Contains(string(hello), `"hello"`) {
		t.Fatalf("hello: %v %s", err, hello)
	}

	if code, d := p.stop(t); code != 0 || d > 10*time.Second {
		t.Fatalf("SIGTERM: exit %d after %v\n%s", code, d, p.stderr)
	}
	// The client got a bye asking it to reconnect, then close 4010.
	var sawBye bool
	for {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := ws.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != protocol.CloseGoingAway || !sawBye {
				t.Fatalf("close: %v (bye seen: %v)", err, sawBye)
			}
			break
		}
		if strings.Contains(string(m), `"bye"`) && strings.Contains(string(m), `"reconnect":true`) {
			sawBye = true
		}
	}

	p2 := startDev(t, data)
	tok = mint(t, data, "alice")
	code, b = call(t, "GET", p2.url("/v1/conversations/"+conv.ID+"/messages"), tok, "")
	var page protocol.HistoryResult
	if err := json.Unmarshal(b, &page); code != 200 || err != nil || len(page.Msgs) != 1 || page.Msgs[0].ID != ack.ID || page.Msgs[0].Seq != 1 {
		t.Fatalf("history after restart: %d %s", code, b)
	}
	code, b = call(t, "GET", p2.url("/v1/conversations/"+conv.ID), tok, "")
	if code != 200 || !strings.Contains(string(b), `"head":1`) {
		t.Fatalf("conversation after restart: %d %s", code, b)
	}
	// The idempotency record survived too: a retry is a duplicate.
	code, b = call(t, "POST", p2.url("/v1/conversations/"+conv.ID+"/messages"), tok, `{"cmid":"m1","body":"kept across restarts"}`)
	if code != 200 || !strings.Contains(string(b), `"dup":true`) || !strings.Contains(string(b), ack.ID) {
		t.Fatalf("retry after restart: %d %s", code, b)
	}
	if code, d := p2.stop(t); code != 0 || d > 10*time.Second {
		t.Fatalf("second SIGTERM: exit %d after %v", code, d)
	}
}
