package edge

import (
	"strconv"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestDispatchReusesFrames: deliveries with the same data go to every
// member as the right push frames, a delivery with the same data split
// differently (another Natter-Batch header) or with other data is encoded
// anew, whichever dispatcher the users share.
func TestDispatchReusesFrames(t *testing.T) {
	t.Parallel()
	e, srv := testHubEdge(t, time.Hour)

	const users = 8 // over the 4 dispatchers
	clients := make([]*websocket.Conn, users)
	for i := range users {
		s, c := dialSession(t, e, "u"+strconv.Itoa(i))
		s.expires = e.since() + int64(time.Hour)
		if err := e.hub.add(s); err != nil {
			t.Fatal(err)
		}
		s.inHub = true
		clients[i] = c
	}
	pub := testenv.Connect(t, srv.ClientURL())

	// Entries as the fan-out sends them: the same data, split two ways.
	a, b, c := []byte(`{"id":"m1","seq":1}`), []byte(`{"id":"m2","seq":2}`), []byte(`{"id":"m3","seq":3}`)
	data := append(append(append([]byte(nil), a...), b...), c...)
	twoThenOne := delivery.Payload{Data: data, Header: nats.Header{delivery.Header: []string{strconv.Itoa(len(a)+len(b)) + "," + strconv.Itoa(len(c))}}}
	three := delivery.Pack([][]byte{a, b, c}, 1<<20)[0]
	other := delivery.Pack([][]byte{c, a}, 1<<20)[0]
	want := func(entries ...[]byte) []string {
		var out []string
		for _, e := range entries {
			out = append(out, `{"t":"msg","msg":`+string(e)+`}`)
		}
		return out
	}
	ab := append(append([]byte(nil), a...), b...)
	rounds := []struct {
		p    delivery.Payload
		want []string
	}{
		{three, want(a, b, c)},
		{three, want(a, b, c)},
		{twoThenOne, want(ab, c)},
		{other, want(c, a)},
		{three, want(a, b, c)},
	}
	for r, round := range rounds {
		for i := range users {
			if err := pub.PublishMsg(round.p.Msg(subjects.Deliver("u" + strconv.Itoa(i)))); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
		for i, cl := range clients {
			for k, w := range round.want {
				_ = cl.SetReadDeadline(time.Now().Add(60 * time.Second))
				_, got, err := cl.ReadMessage()
				if err != nil {
					t.Fatalf("round %d, user %d, frame %d: %v", r, i, k, err)
				}
				if string(got) != w {
					t.Fatalf("round %d, user %d, frame %d: %s, want %s", r, i, k, got, w)
				}
			}
		}
	}
}
