package client

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"
)

// The frames the writer builds, of every length encoding (7-bit, 16-bit,
// 64-bit) and batched in one write, are read back whole and in order by
// the WebSocket library on the server side.
func TestClientFramesReadByServer(t *testing.T) {
	sizes := []int{0, 1, 7, 8, 125, 126, 127, 1000, 65535, 65536, 200_000}
	got := make(chan []byte, len(sizes))
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			errc <- err
			return
		}
		defer ws.Close()
		ws.SetReadLimit(1 << 20)
		for range sizes {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				errc <- err
				return
			}
			if mt != websocket.TextMessage {
				errc <- err
				return
			}
			got <- data
		}
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var buf []byte
	want := make([][]byte, len(sizes))
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		for j := range p {
			p[j] += byte(j % 3) // not one repeated byte: the mask's offsets show
		}
		want[i] = p
		buf = appendClientFrame(buf, p, 0x9abcdef0+uint32(i))
	}
	if _, err := ws.NetConn().Write(buf); err != nil {
		t.Fatal(err)
	}
	for i := range sizes {
		select {
		case data := <-got:
			if !bytes.Equal(data, want[i]) {
				t.Fatalf("frame %d (%d bytes): the server read %d bytes, not the payload", i, sizes[i], len(data))
			}
		case err := <-errc:
			t.Fatalf("frame %d: the server: %v", i, err)
		}
	}
}
