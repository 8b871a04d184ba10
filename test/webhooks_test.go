package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/workers/webhooks"
)

// TestWebhooksEndToEnd: a dev node configured with a webhook endpoint (a
// local HTTP server standing in for the third party) delivers the
// message_created event of a send, signed, once.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Parallel()
	const secret = "webhook-secret-0123456789"
	var mu sync.Mutex
	var got []natter.Event
	var badSig error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhooks.Verify(secret, r.Header.Get(webhooks.HeaderTimestamp), body, r.Header.Get(webhooks.HeaderSignature), time.Minute); err != nil {
			mu.Lock()
			badSig = err
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev natter.Event
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	n := startNode(t, node.Config{Mode: node.ModeDev, Edge: edgeConfig(),
		Webhooks: []webhooks.Endpoint{{Name: "crm", URL: srv.URL, Secret: secret, Kinds: []string{"message_created"}}}})
	alice := mustDial(t, n, "alice")
	var conv natter.Conversation
	alice.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"bob"}`, &conv)
	ack := alice.send(conv.ID, "w1", "to the crm")
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if badSig != nil {
			t.Fatalf("bad signature: %v", badSig)
		}
		if len(got) != 1 {
			return fmt.Errorf("%d deliveries", len(got))
		}
		return nil
	})
	mu.Lock()
	ev := got[0]
	mu.Unlock()
	if ev.Kind != "message_created" || ev.Conv != conv.ID || ev.ID == "" || !jsonHas(ev.Data, ack.ID) {
		t.Fatalf("event %+v", ev)
	}
}

func jsonHas(raw json.RawMessage, s string) bool {
	return json.Valid(raw) && strings.Contains(string(raw), s)
}
