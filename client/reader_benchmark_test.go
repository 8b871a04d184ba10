package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// BenchmarkReadFrames: reading the edge's push frames off a loopback
// WebSocket, each about 250 bytes, that a server writes 64 at a time:
// with the client's reader (reader.go) and with the WebSocket library's
// reader as the client used it before (NextReader, the frame copied into
// a kept buffer). Per frame: the read calls (amortised: frames come
// together), the framing, the copy.
func BenchmarkReadFrames(b *testing.B) {
	push := protocol.Push([]byte(`{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"d_7f3a9c0e1d2b","seq":1000000000000001,"from":"bb1c2d3f0","cmid":"Zm9vYmFyYmF6cXV4cXV1eA","body":"1767225600123456789 ` + strings.Repeat("x", 108) + `","ts":1767225600123}`))
	var burst []byte
	for range 64 {
		burst = append(burst, serverFrame(opText, true, push)...)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for sent := 0; sent < n; sent += 64 {
			if _, err := ws.NetConn().Write(burst); err != nil {
				return
			}
		}
		_, _, _ = ws.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	url := func(n int) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "?n=" + strconv.Itoa(n) }
	frames := func(b *testing.B) int { return (b.N + 63) / 64 * 64 }

	b.Run("client", func(b *testing.B) {
		var h *handoff
		d, _ := handoffDialer(websocket.Dialer{}, false, &h)
		ws, _, err := d.DialContext(context.Background(), url(frames(b)), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		h.trickle = false
		fr := newFrameReader(h)
		b.ReportAllocs()
		b.SetBytes(int64(len(push)))
		b.ResetTimer()
		for range frames(b) {
			if _, p, err := fr.next(); err != nil || len(p) != len(push) {
				b.Fatal(len(p), err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		ws, _, err := websocket.DefaultDialer.Dial(url(frames(b)), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		cn := &conn{ws: ws}
		b.ReportAllocs()
		b.SetBytes(int64(len(push)))
		b.ResetTimer()
		for range frames(b) {
			if _, p, err := cn.libraryFrame(); err != nil || len(p) != len(push) {
				b.Fatal(len(p), err)
			}
		}
	})
}
