package edge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsembed"
)

// testEdge is an edge with what sessions and the hub use (no mesh
// dependencies: the only request these tests make is ping).
func testEdge(t testing.TB, cfg Config) *Edge {
	t.Helper()
	cfg = cfg.WithDefaults()
	return &Edge{cfg: cfg, log: cfg.Logger, m: newMetrics(nil), epoch: time.Now(), upgrader: newUpgrader(cfg)}
}

// dialSession connects a real WebSocket client to a session over
// 127.0.0.1, upgraded the way the edge upgrades (hijacked socket).
func dialSession(t testing.TB, e *Edge, user string) (*session, *websocket.Conn) {
	t.Helper()
	return dialSessionWith(t, e, user, nil)
}

// dialSessionWith is dialSession with the server's socket wrapped by wrap
// (nil: not wrapped).
func dialSessionWith(t testing.TB, e *Edge, user string, wrap func(net.Conn) net.Conn) (*session, *websocket.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type upgraded struct {
		conn *websocket.Conn
		err  error
	}
	ch := make(chan upgraded, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- upgraded{err: err}
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(raw))
		if err != nil {
			ch <- upgraded{err: err}
			return
		}
		if wrap != nil {
			raw = wrap(raw)
		}
		c, err := e.upgrader.Upgrade(&hijacked{conn: raw}, r, nil)
		ch <- upgraded{c, err}
	}()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{protocol.Subprotocol}}
	client, _, err := d.Dial("ws://"+ln.Addr().String()+protocol.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	u := <-ch
	if u.err != nil {
		t.Fatal(u.err)
	}
	if got := client.Subprotocol(); got != protocol.Subprotocol {
		t.Fatalf("subprotocol %q, want %q", got, protocol.Subprotocol)
	}
	s := newSession(e, u.conn, "s_"+user)
	s.user, s.device = user, "d1"
	e.m.connections.Inc()
	e.wg.Add(1) // done by s.end
	return s, client
}

// testNATS starts an embedded NATS server (JetStream on, store under the
// test's temp dir) and connects to it; both end with the test.
func testNATS(t testing.TB) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	srv := testenv.StartNATS(t)
	return srv, testenv.Connect(t, srv.ClientURL())
}

// testHubEdge is a test edge (testEdge) with a hub on a real embedded NATS
// server, heartbeat every ping; it returns the server too.
func testHubEdge(t *testing.T, ping time.Duration) (*Edge, *natsembed.Server) {
	t.Helper()
	return testHubEdgeConfig(t, Config{PingInterval: ping})
}

// testHubEdgeConfig is testHubEdge with cfg (its PingInterval is the hub's
// heartbeat).
func testHubEdgeConfig(t *testing.T, cfg Config) (*Edge, *natsembed.Server) {
	t.Helper()
	srv, nc := testNATS(t)
	e := testEdge(t, cfg)
	var err error
	if e.hub, err = newHub(nc, e.m, cfg.PingInterval, e.since, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.hub.stop)
	return e, srv
}

// writerRunning reports whether s has a writer goroutine.
func writerRunning(s *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writing
}

// waitFor polls cond every 5ms until it holds, failing after 60s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.CheckFor(t, 60*time.Second, 5*time.Millisecond, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// TestWriterOnDemand: frames enqueued from many goroutines at once all
// arrive, each goroutine's in its order; the writer goroutine exits once the
// queue is drained and a later enqueue starts a new one, round after round;
// close then flushes, says bye and closes with the code.
func TestWriterOnDemand(t *testing.T) {
	t.Parallel()
	e := testEdge(t, Config{SendQueue: 1 << 20})
	s, client := dialSession(t, e, "alice")
	const producers, perProducer, rounds = 8, 300, 4

	frames := make(chan string, 1024)
	go func() {
		defer close(frames)
		for {
			_ = client.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, data, err := client.ReadMessage()
			if err != nil {
				frames <- "error: " + err.Error()
				return
			}
			frames <- string(data)
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case f := <-frames:
			return f
		case <-time.After(60 * time.Second):
			t.Fatal("no frame within 60s")
			return ""
		}
	}

	for round := range rounds {
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perProducer {
					if !s.enqueue(fmt.Appendf(nil, "%d %d %d", round, p, i)) {
						t.Errorf("enqueue refused")
						return
					}
				}
			}()
		}
		last := make([]int, producers)
		for p := range last {
			last[p] = -1
		}
		for range producers * perProducer {
			var r, p, i int
			f := next()
			if _, err := fmt.Sscanf(f, "%d %d %d", &r, &p, &i); err != nil || r != round {
				t.Fatalf("round %d: frame %q", round, f)
			}
			if i != last[p]+1 {
				t.Fatalf("round %d: producer %d: frame %d after %d", round, p, i, last[p])
			}
			last[p] = i
		}
		wg.Wait()
		waitFor(t, "the writer to exit after round "+strconv.Itoa(round), func() bool { return !writerRunning(s) })
	}

	// Queued frames are flushed before the bye and the close frame.
	s.enqueue([]byte("last"))
	s.close(protocol.CloseGoingAway, "bye now", true, true)
	<-s.written
	if f := next(); f != "last" {
		t.Fatalf("want the last frame flushed, got %q", f)
	}
	bye, err := protocol.DecodeServer([]byte(next()))
	if err != nil || bye.Bye == nil || bye.Bye.Code != protocol.CloseGoingAway || !bye.Bye.Reconnect {
		t.Fatalf("want a bye frame with %d, got %+v (%v)", protocol.CloseGoingAway, bye, err)
	}
	if f := next(); !strings.Contains(f, strconv.Itoa(protocol.CloseGoingAway)) {
		t.Fatalf("want close %d, got %q", protocol.CloseGoingAway, f)
	}
	if s.enqueue([]byte("late")) {
		t.Fatal("enqueue after close was accepted")
	}
	s.end()
}

// TestQueueLimit: a batch that arrives at an empty queue is taken whole,
// even when it holds more frames than the queue (the socket keeps up);
// frames that would take a non-empty queue past SendQueue close the
// session as a slow consumer (4008).
func TestQueueLimit(t *testing.T) {
	t.Parallel()
	e := testEdge(t, Config{SendQueue: 4})
	s, client := dialSession(t, e, "dave")
	batch := make([][]byte, 10)
	for i := range batch {
		batch[i] = []byte("f" + strconv.Itoa(i))
	}
	if !s.enqueueAll(batch) {
		t.Fatal("a batch of 10 into an empty queue of 4 was refused")
	}
	for i := range batch {
		_ = client.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, data, err := client.ReadMessage(); err != nil || string(data) != "f"+strconv.Itoa(i) {
			t.Fatalf("frame %d: %q, %v", i, data, err)
		}
	}
	// Frames waiting (as when the writer is busy with a batch): queued
	// behind the writer's back, so that it does not take them.
	s.mu.Lock()
	s.frames = append(s.frames, []byte("w1"), []byte("w2"), []byte("w3"))
	s.mu.Unlock()
	if s.enqueueAll([][]byte{[]byte("x1"), []byte("x2")}) {
		t.Fatal("3 waiting + 2 frames over a queue of 4 were taken")
	}
	code := -1
	for code < 0 {
		_ = client.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, _, err := client.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			code = ce.Code
		case err != nil:
			t.Fatalf("read: %v", err)
		}
	}
	if code != protocol.CloseSlowConsumer {
		t.Fatalf("closed with %d, want %d", code, protocol.CloseSlowConsumer)
	}
	<-s.written
	s.end()
}

// TestWriterCloseRace: enqueues racing with close never leave a writer
// running or a session unfinished (run with -race).
func TestWriterCloseRace(t *testing.T) {
	t.Parallel()
	e := testEdge(t, Config{SendQueue: 1 << 20})
	for round := range 20 {
		s, client := dialSession(t, e, "bob"+strconv.Itoa(round))
		go func() {
			for {
				if _, _, err := client.ReadMessage(); err != nil {
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for p := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					s.enqueue([]byte("x"))
					if p == 0 && i == 100 {
						s.close(protocol.CloseGoingAway, "", true, true)
					}
					if i%50 == 0 {
						s.queuePing()
					}
				}
			}()
		}
		wg.Wait()
		select {
		case <-s.written:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: the writer did not finish after close", round)
		}
		s.end()
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("sessions not ended")
	}
}

// TestHeartbeat runs the hub's heartbeat over real sessions: a client that
// answers pings is pinged about once per interval and stays connected; a
// client that talks is not pinged; a client that stops answering is closed
// with 4009 (idle timeout) after about two intervals; a session whose token
// expires is closed with 4001.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	const every = time.Second
	e, _ := testHubEdge(t, every)

	start := func(user string, ttl time.Duration) (*session, *websocket.Conn) {
		s, client := dialSession(t, e, user)
		s.expires = e.since() + int64(ttl)
		if err := e.hub.add(s); err != nil {
			t.Fatal(err)
		}
		s.inHub = true
		go s.readLoop()
		return s, client
	}
	// reads counts the pings a client gets and returns its close code
	// (or -1 on another error) on a channel.
	reads := func(c *websocket.Conn, pings *atomic.Int32, answer bool) <-chan int {
		c.SetPingHandler(func(data string) error {
			pings.Add(1)
			if !answer {
				return nil
			}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		})
		code := make(chan int, 1)
		go func() {
			for {
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				if _, _, err := c.ReadMessage(); err != nil {
					if ce, ok := err.(*websocket.CloseError); ok {
						code <- ce.Code
					} else {
						code <- -1
					}
					return
				}
			}
		}()
		return code
	}

	var livePings, chattyPings, deadPings, expiringPings atomic.Int32
	_, live := start("live", time.Hour)
	liveClosed := reads(live, &livePings, true)
	_, chatty := start("chatty", time.Hour)
	chattyClosed := reads(chatty, &chattyPings, true)
	_, dead := start("dead", time.Hour)
	deadClosed := reads(dead, &deadPings, false)
	_, expiring := start("expiring", every)
	expiringClosed := reads(expiring, &expiringPings, true)

	// The token of the expiring client runs out after one interval.
	select {
	case code := <-expiringClosed:
		if code != protocol.CloseUnauthorized {
			t.Fatalf("expired token: close %d, want %d", code, protocol.CloseUnauthorized)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("session with an expired token not closed")
	}

	// The dead client is closed with 4009 after about two intervals.
	select {
	case code := <-deadClosed:
		if code != protocol.CloseIdleTimeout {
			t.Fatalf("silent client: close %d, want %d", code, protocol.CloseIdleTimeout)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("silent client not closed")
	}
	if deadPings.Load() == 0 {
		t.Fatal("silent client was never pinged")
	}

	// The chatty client sends a request every quarter interval for three
	// intervals; the live one only answers pings.
	chattyPings.Store(0)
	t0 := time.Now()
	for i := 0; time.Since(t0) < 3*every; i++ {
		req := fmt.Sprintf(`{"op":"ping","id":"p%d"}`, i)
		if err := chatty.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every / 4)
	}
	waitFor(t, "live client pings", func() bool {
		select {
		case code := <-liveClosed:
			t.Fatalf("live client closed (%d) after %d pings", code, livePings.Load())
		default:
		}
		return livePings.Load() >= 3
	})
	if n := chattyPings.Load(); n > 1 {
		t.Fatalf("a client that talks was pinged %d times", n)
	}
	for name, ch := range map[string]<-chan int{"live": liveClosed, "chatty": chattyClosed} {
		select {
		case code := <-ch:
			t.Fatalf("%s client closed (%d)", name, code)
		default:
		}
	}
}

// TestWriteDeadline: the writer moves the socket's write deadline only now
// and then, but a reading client is served however long the session
// lasts, and a write blocked by a client that stopped reading is cut
// after WriteTimeout to 1.5 WriteTimeout (the session closes).
func TestWriteDeadline(t *testing.T) {
	t.Parallel()
	const wt = 200 * time.Millisecond
	e := testEdge(t, Config{SendQueue: 1 << 20, WriteTimeout: wt})
	s, client := dialSession(t, e, "carol")

	// Frames one at a time, each read before the next, for 5 write
	// timeouts: every write must go through.
	start := time.Now()
	for i := 0; time.Since(start) < 5*wt; i++ {
		if i >= 10_000_000 {
			t.Fatal("10,000,000 frames in less than 5 write timeouts")
		}
		if !s.enqueue([]byte(strconv.Itoa(i))) {
			t.Fatalf("frame %d refused", i)
		}
		_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, data, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if string(data) != strconv.Itoa(i) {
			t.Fatalf("frame %q, want %d", data, i)
		}
	}

	// The client stops reading: 64 MiB cannot fit in the sockets' buffers,
	// so a write blocks until the deadline cuts it.
	big := make([]byte, 64<<10)
	for i := range 1024 {
		if !s.enqueue(big) {
			t.Fatalf("big frame %d refused", i)
		}
	}
	select {
	case <-s.written:
	case <-time.After(60 * time.Second):
		t.Fatal("a blocked write was not cut within 60s")
	}
	s.end()
}
