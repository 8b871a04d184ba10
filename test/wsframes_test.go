package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// TestClientPingAnswered: a client's ping gets a pong with its payload. The
// edge's writer answers it (every write to a socket happens there, frames
// are framed by the edge), between replies to requests.
func TestClientPingAnswered(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	pongs := make(chan string, 4)
	alice.conn.SetPongHandler(func(s string) error { pongs <- s; return nil })
	for i := range 3 {
		payload := fmt.Sprintf("ping-%d", i)
		if err := alice.conn.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		// A request after the ping: its reply is read after the pong (the
		// reader handles control frames as they come).
		id := fmt.Sprintf("r%d", i)
		alice.write(`{"op":"conv.list","id":"` + id + `"}`)
		if f := alice.reply(id); f.T != protocol.FrameRes {
			t.Fatalf("list: %+v", f.Err)
		}
		select {
		case got := <-pongs:
			if got != payload {
				t.Fatalf("pong %q, want %q", got, payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no pong for %s", payload)
		}
	}
}

// TestGroupBurstInOrder: a burst into a group reaches a member as one push
// frame per message, in log order, with nothing lost or repeated, and
// frames of every size (the edge frames them itself and writes a socket's
// waiting frames in one call): bodies of 10 bytes to 60 KiB.
func TestGroupBurstInOrder(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	bob := mustDial(t, m.dev, "bob")
	carol := mustDial(t, m.dev, "carol")
	alice.write(`{"op":"conv.create","id":"c","kind":"group","members":["bob","carol"]}`)
	f := alice.reply("c")
	if f.T != protocol.FrameRes {
		t.Fatalf("create: %+v", f.Err)
	}
	var conv natter.Conversation
	if err := json.Unmarshal(f.Data, &conv); err != nil {
		t.Fatal(err)
	}
	sizes := []int{10, 200, 126, 5000, 60 << 10, 1, 65000 - 200, 300}
	const rounds = 25
	n := 0
	for r := range rounds {
		for i, size := range sizes {
			body := strings.Repeat(string(rune('a'+(r+i)%26)), size)
			id := fmt.Sprintf("s%d", n)
			frame, _ := json.Marshal(map[string]any{"op": "send", "id": id, "conv": conv.ID, "cmid": id, "body": body})
			alice.write(string(frame))
			n++
		}
	}
	for i := range n {
		if f := alice.reply(fmt.Sprintf("s%d", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}
	for _, c := range []*rawConn{bob, carol} {
		for i := range n {
			f := c.next()
			for f.T != protocol.FrameMsg {
				f = c.next()
			}
			if f.Message.Seq != uint64(i+1) || f.Message.Cmid != fmt.Sprintf("s%d", i) {
				t.Fatalf("push %d: seq %d cmid %s", i, f.Message.Seq, f.Message.Cmid)
			}
			want := sizes[i%len(sizes)]
			if len(f.Message.Body) != want {
				t.Fatalf("push %d: body of %d bytes, want %d", i, len(f.Message.Body), want)
			}
		}
	}
}
