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

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
)

// TestHistoryAndSyncBeyondHotTier keeps only 100 messages per conversation
// in JetStream; the 300 sent are all readable: history pages and a sync from
// cursor 0 stitch MongoDB (archive) and the hot tier without gap or repeat.
func TestHistoryAndSyncBeyondHotTier(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{streams: streams.Config{HotTier: 100}})
	alice := mustDial(t, m.dev, "alice")
	group := alice.createGroup("archive", "bob")
	const n = 300
	for i := 1; i <= n; i++ {
		alice.write(fmt.Sprintf(`{"op":"send","id":"s%d","conv":%q,"cmid":"c%d","body":"m%d"}`, i, group.ID, i, i))
	}
	for i := 1; i <= n; i++ {
		if f := alice.reply(fmt.Sprint("s", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}
	// Wait until the archive has everything (the persist worker runs behind).
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		c, err := m.dev.Store().CountMessages(context.Background(), group.ID)
		if err != nil || c != n {
			return fmt.Errorf("archived %d (%v)", c, err)
		}
		return nil
	})
	bob := mustDial(t, m.dev, "bob")
	check := func(msgs []natter.Message, from, to int) {
		t.Helper()
		if len(msgs) != to-from+1 {
			t.Fatalf("got %d messages, want seqs %d..%d", len(msgs), from, to)
		}
		for i, msg := range msgs {
			if msg.Seq != uint64(from+i) || msg.Body != fmt.Sprint("m", from+i) {
				t.Fatalf("position %d: seq %d body %q, want seq %d", i, msg.Seq, msg.Body, from+i)
			}
		}
	}
	page := func(id, frame string) protocol.HistoryResult {
		t.Helper()
		var h protocol.HistoryResult
		bob.request(id, frame, &h)
		return h
	}
	// Newest page: hot tier only.
	h := page("h1", fmt.Sprintf(`{"op":"history","id":"h1","conv":%q,"limit":50}`, group.ID))
	check(h.Msgs, 251, 300)
	if !h.More {
		t.Fatal("newest page: more should be true")
	}
	// A page straddling the hot tier's edge (oldest hot seq is 201).
	h = page("h2", fmt.Sprintf(`{"op":"history","id":"h2","conv":%q,"before":230,"limit":50}`, group.ID))
	check(h.Msgs, 180, 229)
	// Entirely in the archive.
	h = page("h3", fmt.Sprintf(`{"op":"history","id":"h3","conv":%q,"before":51,"limit":50}`, group.ID))
	check(h.Msgs, 1, 50)
	if h.More {
		t.Fatal("first page: more should be false")
	}
	h = page("h4", fmt.Sprintf(`{"op":"history","id":"h4","conv":%q,"after":150,"limit":100}`, group.ID))
	check(h.Msgs, 151, 250)

	// Sync from 0 walks archive then hot tier, page by page.
	var all []natter.Message
	cursor := uint64(0)
	for round := 0; round < 10; round++ {
		var s protocol.SyncResult
		id := fmt.Sprint("y", round)
		bob.request(id, fmt.Sprintf(`{"op":"sync","id":%q,"cursors":{%q:%d},"limit":120}`, id, group.ID, cursor), &s)
		var sc *protocol.SyncConv
		for i := range s.Convs {
			if s.Convs[i].Conv == group.ID {
				sc = &s.Convs[i]
			}
		}
		if sc == nil || sc.Head != n {
			t.Fatalf("sync: %+v", s)
		}
		all = append(all, sc.Msgs...)
		if len(sc.Msgs) > 0 {
			cursor = sc.Msgs[len(sc.Msgs)-1].Seq
		}
		if !sc.More {
			break
		}
	}
	check(all, 1, n)
}

// TestRESTErrors: the REST API answers bad input with the protocol's codes
// and HTTP statuses.
func TestRESTErrors(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	base := "http://" + m.dev.Addr() + "/v1/conversations"
	alice, carol := token(t, "alice"), token(t, "carol")
	do := func(method, url, tok, body string, hdr ...string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
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
		return resp.StatusCode, e.Code, string(b)
	}
	code, _, body := do("POST", base, alice, `{"kind":"direct","with":"bob"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var conv natter.Conversation
	_ = json.Unmarshal([]byte(body), &conv)
	msgs := base + "/" + conv.ID + "/messages"
	cases := []struct {
		name, method, url, tok, body string
		hdr                          []string
		status                       int
		code                         string
	}{
		{"no token", "GET", base, "", "", nil, 401, "unauthorized"},
		{"expired token", "GET", base, expiredToken(t, "alice"), "", nil, 401, "unauthorized"},
		{"malformed json", "POST", msgs, alice, `{"cmid":`, nil, 400, "bad_json"},
		{"missing body", "POST", msgs, alice, `{"cmid":"r1"}`, nil, 400, "bad_frame"},
		{"bad limit", "GET", msgs + "?limit=x", alice, "", nil, 400, "bad_frame"},
		{"not a member", "POST", msgs, carol, `{"cmid":"r2","body":"hi"}`, nil, 403, "not_member"},
		{"history not a member", "GET", msgs, carol, "", nil, 403, "not_member"},
		{"too big", "POST", msgs, alice, `{"cmid":"r3","body":"` + strings.Repeat("x", 64<<10+100) + `"}`, nil, 413, "too_big"},
		{"disallowed origin", "GET", base, alice, "", []string{"Origin", "https://evil.example"}, 403, "forbidden"},
	}
	for _, tc := range cases {
		code, c, body := do(tc.method, tc.url, tc.tok, tc.body, tc.hdr...)
		if code != tc.status || c != tc.code {
			t.Errorf("%s: %d %s, want %d %s (%s)", tc.name, code, c, tc.status, tc.code, body)
		}
	}
	// Idempotency-Key works like cmid, and nothing of the above was stored.
	code, _, body = do("POST", msgs, alice, `{"body":"via header"}`, "Idempotency-Key", "k1")
	code2, _, body2 := do("POST", msgs, alice, `{"body":"via header"}`, "Idempotency-Key", "k1")
	if code != 201 || code2 != 200 || !strings.Contains(body2, `"seq":1`) || !strings.Contains(body, `"seq":1`) {
		t.Fatalf("idempotency key: %d %s / %d %s", code, body, code2, body2)
	}
}
