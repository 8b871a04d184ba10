package edge

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// TestAppendFrame writes frames framed by appendFrame, several in one write,
// to a real WebSocket client (fasthttp/websocket's), which must read each
// message back whole: every length encoding (7-bit, 16-bit, 64-bit), and a
// pong control frame between them.
func TestAppendFrame(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	payloads := make([][]byte, len(sizes))
	for i, n := range sizes {
		payloads[i] = bytes.Repeat([]byte{byte('a' + i)}, n)
	}
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		// The server half of the opening handshake (RFC 6455 section 4.2.2).
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			served <- err
			return
		}
		accept := computeAcceptKeyForTest(req.Header.Get("Sec-WebSocket-Key"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n"
		var buf []byte
		buf = append(buf, resp...)
		for i, p := range payloads {
			buf = appendFrame(buf, opText, p)
			if i == 2 {
				buf = appendFrame(buf, opPong, []byte("pong-data"))
			}
		}
		_, err = c.Write(buf) // one write: the handshake answer and every frame
		served <- err
		// Hold the socket until the client is done reading.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = c.Read(make([]byte, 1))
	}()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i, p := range payloads {
		mt, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d (%d bytes): %v", i, len(p), err)
		}
		if mt != websocket.TextMessage || !bytes.Equal(got, p) {
			t.Fatalf("message %d: type %d, %d bytes, want text of %d bytes", i, mt, len(got), len(p))
		}
	}
	select {
	case s := <-pong:
		if s != "pong-data" {
			t.Fatalf("pong %q", s)
		}
	default:
		t.Fatal("no pong read")
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// computeAcceptKeyForTest is Sec-WebSocket-Accept for key (RFC 6455
// section 4.2.2): base64 of the SHA-1 of the key and the protocol's GUID.
func computeAcceptKeyForTest(key string) string {
	h := sha1.Sum([]byte(strings.TrimSpace(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
