package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
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
	return newSendEdgeWith(tb, asked, nil)
}

// newSendEdgeWith is newSendEdge with its Config changed by change (nil:
// none) before the edge starts.
func newSendEdgeWith(tb testing.TB, asked func(conv string), change func(*Config)) *Edge {
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
	cfg := Config{
		Auth: auth.Config{Keys: []auth.Key{key}}, PingInterval: time.Hour,
		Rate: 1e9, Burst: 1e9, Limits: limits.Config{UserRate: -1},
	}
	if change != nil {
		change(&cfg)
	}
	e, err := New(ctx, cfg, Deps{NC: nc, JS: js, Log: log, Convs: convs, Members: cache})
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

// pipeSession is a session on a synchronous in-memory pipe (net.Pipe): a
// server write blocks until the client reads it, which lets a test hold
// the writer in a write. The session's read loop runs.
func pipeSession(t *testing.T, e *Edge, user string) (*session, *rawClient) {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { _ = cli.Close() })
	r := &http.Request{Method: http.MethodGet, Header: http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}}
	type upgraded struct {
		conn *websocket.Conn
		err  error
	}
	ch := make(chan upgraded, 1)
	go func() {
		c, err := e.upgrader.Upgrade(&hijacked{conn: srv}, r, nil)
		ch <- upgraded{c, err}
	}()
	br := bufio.NewReader(cli)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	u := <-ch
	if u.err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, status %d", u.err, res.StatusCode)
	}
	s := newSession(e, u.conn, "s_"+user)
	s.user, s.device = user, "d1"
	e.m.connections.Inc()
	e.wg.Add(1) // done by s.end
	go s.readLoop()
	return s, &rawClient{nc: cli, r: br, buf: make([]byte, 0, 4096)}
}

// TestReplyWriterHandsOn: a request that writes its own reply (no writer
// was running) stops writing once that write is done: what was queued
// meanwhile (a push) goes to a writer of its own, and the session reads
// and answers its next request while the push's write waits for the
// client. (A request that stayed the writer would hold the read loop as
// long as pushes kept coming, and a slow client's requests, pongs and
// heartbeat with it.)
func TestReplyWriterHandsOn(t *testing.T) {
	t.Parallel()
	e := testEdge(t, Config{PingInterval: time.Hour, WriteTimeout: time.Minute, Rate: 1e9, Burst: 1e9})
	s, c := pipeSession(t, e, "piped")
	framesIn := func() float64 { return counterValue(e.m.framesIn) }
	if _, err := c.nc.Write(maskedFrame([]byte(`{"op":"ping","id":"p0"}`))); err != nil {
		t.Fatal(err)
	}
	// The reply's write blocks on the pipe until the client reads it.
	waitFor(t, "the reply to be taken by a writer", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return framesIn() == 1 && s.writing && len(s.frames) == 0
	})
	if !s.enqueue(pushOf("m_1")) { // queued behind the write in progress
		t.Fatal("enqueue refused")
	}
	if f, err := c.next(); err != nil || !strings.Contains(string(f), `"id":"p0"`) {
		t.Fatalf("first frame %s (%v), want the result of p0", f, err)
	}
	sent := make(chan error, 1)
	go func() { _, err := c.nc.Write(maskedFrame([]byte(`{"op":"ping","id":"p1"}`))); sent <- err }()
	// The push's write now waits for the client; the read loop must not.
	waitFor(t, "the session to read p1 while the push waits", func() bool { return framesIn() == 2 })
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"m_1"`, `"id":"p1"`} {
		if f, err := c.next(); err != nil || !strings.Contains(string(f), want) {
			t.Fatalf("frame %s (%v), want %s", f, err, want)
		}
	}
}
