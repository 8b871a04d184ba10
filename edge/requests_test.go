package edge

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// newSendEdge is a whole edge (New) on an embedded JetStream with the
// streams applied, and a stand-in of the conversations service's members
// op that makes every conversation's members alice and bob. The stand-in
// calls asked(conv) first, on its subscription's goroutine: a test can
// hold the answer there. Rates are unlimited.
func newSendEdge(tb testing.TB, asked func(conv string)) *Edge {
	tb.Helper()
	srv, nc := testNATS(tb)
	js := testenv.JetStream(tb, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Apply(ctx, js, streams.Config{}); err != nil {
		tb.Fatal(err)
	}
	svc := testenv.Connect(tb, srv.ClientURL())
	if _, err := svc.Subscribe(subjects.ConvEndpoint(convapi.OpMembers), func(m *nats.Msg) {
		var req convapi.MembersRequest
		_ = json.Unmarshal(m.Data, &req)
		asked(req.Conv)
		out, _ := json.Marshal(convapi.MembersReply{Members: []string{"alice", "bob"}})
		_ = m.Respond(out)
	}); err != nil {
		tb.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		tb.Fatal(err)
	}
	convs := convapi.NewClient(nc, 0)
	cache, err := convapi.NewMemberCache(ctx, nc, convs, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cache.Close() })
	log, err := msglog.New(ctx, nc, js, msglog.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	key := auth.Key{ID: "k1", Alg: auth.AlgHS256, Secret: []byte("0123456789abcdef0123456789abcdef")}
	e, err := New(ctx, Config{
		Auth: auth.Config{Keys: []auth.Key{key}}, PingInterval: time.Hour,
		Rate: 1e9, Burst: 1e9, Limits: limits.Config{UserRate: -1},
	}, Deps{NC: nc, JS: js, Log: log, Convs: convs, Members: cache})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

// reply is the part of a server frame these tests look at.
type reply struct {
	T    string `json:"t"`
	ID   string `json:"id"`
	Code string `json:"code"`
}

func readReply(t *testing.T, c *websocket.Conn) reply {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%.200s: %v", data, err)
	}
	return r
}

// TestRequestsInOrder: a connection's requests are answered in the order
// they came, whatever each costs: a send held up by the conversations
// service (its members are not cached yet) is answered before the pings
// sent after it, and frames of very different sizes one after another
// (each read into a pooled buffer) are each answered as what they are.
func TestRequestsInOrder(t *testing.T) {
	t.Parallel()
	conv := natter.DirectID("alice", "bob")
	asked, release := make(chan struct{}), make(chan struct{})
	e := newSendEdge(t, func(c string) {
		if c == conv {
			close(asked)
			<-release
		}
	})
	s, client := dialSession(t, e, "alice")
	go s.readLoop()
	send := `{"op":"send","id":"send","conv":"` + conv + `","cmid":"c1","body":"hi"}`
	if err := client.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	<-asked // the send waits for the members
	const pings = 40
	for i := range pings {
		frame := `{"op":"ping","id":"p` + strconv.Itoa(i) + `"}`
		if i%3 == 1 { // a large frame between small ones (unknown fields are ignored)
			frame = `{"op":"ping","id":"p` + strconv.Itoa(i) + `","pad":"` + strings.Repeat("x", 20_000+i) + `"}`
		}
		if err := client.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if r := readReply(t, client); r.T != "res" || r.ID != "send" {
		t.Fatalf("first reply %+v, want the send's result", r)
	}
	for i := range pings {
		if r := readReply(t, client); r.T != "res" || r.ID != "p"+strconv.Itoa(i) {
			t.Fatalf("reply %d: %+v, want the result of p%d", i+1, r, i)
		}
	}
}

// TestSlowRequestHoldsOnlyItsConnection: while one connection's send
// waits for the conversations service, another connection's requests are
// answered.
func TestSlowRequestHoldsOnlyItsConnection(t *testing.T) {
	t.Parallel()
	conv := natter.DirectID("alice", "bob")
	asked, release := make(chan struct{}), make(chan struct{})
	e := newSendEdge(t, func(c string) {
		if c == conv {
			close(asked)
			<-release
		}
	})
	sa, alice := dialSession(t, e, "alice")
	go sa.readLoop()
	sb, bob := dialSession(t, e, "bob")
	go sb.readLoop()
	send := `{"op":"send","id":"send","conv":"` + conv + `","cmid":"c1","body":"hi"}`
	if err := alice.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	<-asked
	for i := range 20 {
		id := "p" + strconv.Itoa(i)
		if err := bob.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
		if r := readReply(t, bob); r.T != "res" || r.ID != id {
			t.Fatalf("bob's reply %+v, want the result of %s", r, id)
		}
	}
	close(release)
	if r := readReply(t, alice); r.T != "res" || r.ID != "send" {
		t.Fatalf("alice's reply %+v, want the send's result", r)
	}
}
