package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
)

// ackReply is a server frame as the pipeline tests read it.
type ackReply struct {
	T    string     `json:"t"`
	ID   string     `json:"id"`
	Code string     `json:"code"`
	Msg  string     `json:"msg"`
	Data natter.Ack `json:"data"`
}

// pipeSend is one send of a pipeline test: its connection, conversation,
// request id and cmid.
type pipeSend struct {
	conn      int
	conv, id  string
	cmid      string
	frameJSON []byte
}

func newPipeSend(conn int, conv string, n int) pipeSend {
	id := fmt.Sprintf("c%d-%s-%d", conn, conv[:4], n)
	cmid := fmt.Sprintf("k%d%s%d", conn, conv[2:6], n)
	return pipeSend{conn: conn, conv: conv, id: id, cmid: cmid,
		frameJSON: []byte(`{"op":"send","id":"` + id + `","conv":"` + conv + `","cmid":"` + cmid + `","body":"b` + strconv.Itoa(n) + `","first":true}`)}
}

// readAcks reads n replies from c (pushes are not expected: the sessions
// are not in a hub), failing t on a read error or an undecodable frame.
func readAcks(t *testing.T, c *websocket.Conn, n int) []ackReply {
	t.Helper()
	out := make([]ackReply, 0, n)
	for range n {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d replies: %v", len(out), n, err)
		}
		var r ackReply
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%.200s: %v", data, err)
		}
		out = append(out, r)
	}
	return out
}

// checkPipelined checks the replies of sends written without waiting:
// every send answered once with a result; per connection and
// conversation, seqs in the order the sends were written; and the log of
// each conversation: seqs 1..n, no gap, each cmid once, others besides the
// sends listed (extra, by conversation).
func checkPipelined(t *testing.T, e *Edge, sends []pipeSend, replies map[int][]ackReply, extra map[string]int) {
	t.Helper()
	byID := map[string]ackReply{}
	for conn, rs := range replies {
		for _, r := range rs {
			if _, dup := byID[r.ID]; dup {
				t.Fatalf("connection %d: reply %s twice", conn, r.ID)
			}
			if r.T != "res" {
				t.Fatalf("connection %d: reply %+v, want a result", conn, r)
			}
			byID[r.ID] = r
		}
	}
	if len(byID) != len(sends) {
		t.Fatalf("%d replies, want %d", len(byID), len(sends))
	}
	last := map[string]uint64{} // conn/conv -> seq of its previous send
	count := map[string]int{}
	for _, s := range sends {
		r, ok := byID[s.id]
		if !ok {
			t.Fatalf("no reply to %s", s.id)
		}
		if r.Data.Dup || r.Data.Seq == 0 {
			t.Fatalf("%s: ack %+v", s.id, r.Data)
		}
		k := strconv.Itoa(s.conn) + "/" + s.conv
		if r.Data.Seq <= last[k] {
			t.Fatalf("connection %d, %s: %s got seq %d after seq %d: out of order", s.conn, s.conv, s.id, r.Data.Seq, last[k])
		}
		last[k] = r.Data.Seq
		count[s.conv]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for conv, n := range count {
		n += extra[conv]
		var got []natter.Message
		for len(got) < n+1 {
			page, _, err := e.msgs.After(ctx, conv, uint64(len(got)), 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
		}
		if len(got) != n {
			t.Fatalf("%s: %d entries in the log, want %d", conv, len(got), n)
		}
		cmids := map[string]bool{}
		for i, m := range got {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: entry %d has seq %d: a gap", conv, i, m.Seq)
			}
			if cmids[m.From+"/"+m.Cmid] {
				t.Fatalf("%s: cmid %s of %s twice", conv, m.Cmid, m.From)
			}
			cmids[m.From+"/"+m.Cmid] = true
		}
	}
}

// TestPipelinedSends: two connections of one user write 150 sends each to
// one conversation, and a third 150 sends over four conversations,
// without waiting for replies (one write per 10 frames). Every send is
// answered once; each connection's sends to a conversation get seqs in
// the order they were written; each conversation's log is 1..n without a
// gap or a duplicate.
func TestPipelinedSends(t *testing.T) {
	t.Parallel()
	e := newSendEdge(t, func(string) {})
	direct := natter.DirectID("alice", "bob")
	groups := []string{"g_pipe1", "g_pipe2", "g_pipe3", "g_pipe4"}
	const n = 150
	var sends []pipeSend
	conns := make([]*websocket.Conn, 3)
	perConn := make([][]pipeSend, 3)
	for i := range conns {
		s, c := dialSession(t, e, "alice")
		go s.readLoop()
		conns[i] = c
		for k := range n {
			conv := direct
			if i == 2 {
				conv = groups[(k*7/3)%len(groups)] // runs of one conversation and switches
			}
			ps := newPipeSend(i, conv, k)
			perConn[i] = append(perConn[i], ps)
			sends = append(sends, ps)
		}
	}
	replies := map[int][]ackReply{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(2)
		go func() { // the writer: 10 frames per write, never waiting
			defer wg.Done()
			for k := 0; k < n; k += 10 {
				var buf []byte
				for _, ps := range perConn[i][k:min(k+10, n)] {
					buf = append(buf, maskedFrame(ps.frameJSON)...)
				}
				if _, err := c.NetConn().Write(buf); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			rs := readAcks(t, c, n)
			mu.Lock()
			replies[i] = rs
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkPipelined(t, e, sends, replies, nil)
}

// TestPipelineAcrossConversations: while a connection's send to one
// conversation waits (for its members, from the conversations service),
// its send to another conversation, read after it, is appended and
// answered; a ping read after both waits for the first send (it is
// answered after it), and the sends queued behind the waiting one are
// appended in their order once it goes on, their replies in one write
// after the first one's.
func TestPipelineAcrossConversations(t *testing.T) {
	t.Parallel()
	slow, fast := "g_slow", "g_fast"
	asked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	e := newSendEdge(t, func(c string) {
		if c == slow {
			close(asked)
			<-release
		}
	})
	var writes atomic.Int64
	s, client := dialSessionWith(t, e, "alice", func(c net.Conn) net.Conn { return &countingConn{Conn: c, writes: &writes} })
	go s.readLoop()
	write := func(frames ...[]byte) {
		t.Helper()
		var buf []byte
		for _, f := range frames {
			buf = append(buf, maskedFrame(f)...)
		}
		if _, err := client.NetConn().Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	// The fast conversation's members are cached first (the stand-in of
	// the conversations service answers one request at a time).
	warm := newPipeSend(0, fast, 0)
	write(warm.frameJSON)
	if r := readAcks(t, client, 1)[0]; r.T != "res" || r.ID != warm.id {
		t.Fatalf("warm-up reply %+v", r)
	}
	var slows []pipeSend
	for k := range 8 {
		slows = append(slows, newPipeSend(0, slow, k))
	}
	write(slows[0].frameJSON)
	<-asked // the first send to slow waits for its members
	f1 := newPipeSend(0, fast, 1)
	write(f1.frameJSON)
	if r := readAcks(t, client, 1)[0]; r.T != "res" || r.ID != f1.id || r.Data.Seq != 2 {
		t.Fatalf("reply %+v, want the result of %s (seq 2) while %s waits", r, f1.id, slows[0].id)
	}
	var frames [][]byte
	for _, ps := range slows[1:] {
		frames = append(frames, ps.frameJSON)
	}
	write(frames...)
	write([]byte(`{"op":"ping","id":"ping"}`))
	framesIn := func() int { return int(testutilValue(e.m.framesIn)) }
	waitFor(t, "the sends and the ping read", func() bool { return framesIn() == 1+1+1+7+1 })
	before := writes.Load()
	once.Do(func() { close(release) })
	rs := readAcks(t, client, 9)
	for i, ps := range slows {
		if r := rs[i]; r.T != "res" || r.ID != ps.id || r.Data.Seq != uint64(i+1) {
			t.Fatalf("reply %d: %+v, want the result of %s with seq %d", i, r, ps.id, i+1)
		}
	}
	if r := rs[8]; r.T != "res" || r.ID != "ping" {
		t.Fatalf("last reply %+v, want the ping's, after the sends read before it", r)
	}
	// The first send's reply, the seven queued behind it (in one write),
	// the ping's.
	if w := writes.Load() - before; w > 3 {
		t.Fatalf("%d writes for the 8 replies of one run and a ping, want 3 at most", w)
	}
}

// TestPipelinedSendsAgainstAnotherWriter: a connection's pipelined sends to
// one conversation race the appends of another writer (a second msglog.Log
// on its own NATS connection, as another process): the compare-and-set
// loses (at least once: the edge's cached head is made stale first) and
// retries without a gap or a duplicate, and the connection's sends keep
// their order.
func TestPipelinedSendsAgainstAnotherWriter(t *testing.T) {
	t.Parallel()
	e := newSendEdge(t, func(string) {})
	nc := testenv.Connect(t, e.nc.ConnectedUrl())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conflicts atomic.Int64
	logger := slog.New(&conflictCounter{n: &conflicts})
	other, err := msglog.New(ctx, nc, testenv.JetStream(t, nc), msglog.Config{MaxRetries: 1000, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	conv := natter.DirectID("alice", "bob")
	s, client := dialSession(t, e, "alice")
	go s.readLoop()
	// The edge's log caches the head with a first send; the other writer
	// then appends, so the pipeline's first append loses the
	// compare-and-set whatever the race below does.
	warm := newPipeSend(0, conv, 1000)
	if err := client.WriteMessage(websocket.TextMessage, warm.frameJSON); err != nil {
		t.Fatal(err)
	}
	if r := readAcks(t, client, 1)[0]; r.T != "res" || r.Data.Seq != 1 {
		t.Fatalf("warm-up reply %+v", r)
	}
	if _, err := other.Append(ctx, msglog.Send{Conv: conv, From: "bob", Cmid: "stale", Body: "x", FirstAttempt: true}); err != nil {
		t.Fatal(err)
	}
	const n, m = 200, 200
	var sends []pipeSend
	var buf []byte
	for k := range n {
		ps := newPipeSend(0, conv, k)
		sends = append(sends, ps)
		buf = append(buf, maskedFrame(ps.frameJSON)...)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := range m {
			if _, err := other.Append(ctx, msglog.Send{Conv: conv, From: "bob", Cmid: "o" + strconv.Itoa(k), Body: "x", FirstAttempt: true}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	if _, err := client.NetConn().Write(buf); err != nil {
		t.Fatal(err)
	}
	rs := readAcks(t, client, n)
	wg.Wait()
	if t.Failed() {
		return
	}
	checkPipelined(t, e, sends, map[int][]ackReply{0: rs}, map[string]int{conv: m + 2})
	t.Logf("the other writer lost the compare-and-set %d times", conflicts.Load())
}

// conflictCounter is a slog handler that counts msglog's "append conflict"
// records.
type conflictCounter struct{ n *atomic.Int64 }

func (c *conflictCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *conflictCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "append conflict" {
		c.n.Add(1)
	}
	return nil
}
func (c *conflictCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *conflictCounter) WithGroup(string) slog.Handler      { return c }

// countingConn counts the writes made on a socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// testutilValue is a counter's value.
func testutilValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestPipelineEndWaitsForSends: a connection that closes with a send in
// flight ends its session only once the send is answered (the session's
// end waits for it, as the read loop waited for its request before); the
// send is appended and its reply dropped.
func TestPipelineEndWaitsForSends(t *testing.T) {
	t.Parallel()
	slow := "g_slowend"
	asked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	e := newSendEdge(t, func(c string) {
		if c == slow {
			close(asked)
			<-release
		}
	})
	s, client := dialSession(t, e, "alice")
	ended := make(chan struct{})
	go func() { s.readLoop(); close(ended) }()
	ps := newPipeSend(0, slow, 0)
	if err := client.WriteMessage(websocket.TextMessage, ps.frameJSON); err != nil {
		t.Fatal(err)
	}
	<-asked
	_ = client.Close()
	waitFor(t, "the read loop to wait for the send in flight", func() bool {
		s.pipe.mu.Lock()
		defer s.pipe.mu.Unlock()
		return s.pipe.want == 1
	})
	select {
	case <-ended:
		t.Fatal("the session ended with a send in flight")
	default:
	}
	once.Do(func() { close(release) })
	waitFor(t, "the session to end", func() bool {
		select {
		case <-ended:
			return true
		default:
			return false
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, _, err := e.msgs.After(ctx, slow, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Cmid != ps.cmid {
		t.Fatalf("log of %s: %+v, want the send", slow, msgs)
	}
}

// TestPipelinedSendsChecksPerFrame: sends written without waiting still
// pass the per-frame checks one frame at a time in the order written: the
// connection's rate lets the burst through (the first 5, maybe one more
// refilled) and refuses the rest with rate_limited; a bad frame among
// them gets bad_json; every frame gets one reply, and the log holds
// exactly the sends let through, in their order.
func TestPipelinedSendsChecksPerFrame(t *testing.T) {
	t.Parallel()
	e := newSendEdgeWith(t, func(string) {}, func(c *Config) { c.Rate, c.Burst = 1, 5 })
	conv := natter.DirectID("alice", "bob")
	s, client := dialSession(t, e, "alice")
	go s.readLoop()
	const n = 12
	var sends []pipeSend
	var buf []byte
	for k := range n {
		ps := newPipeSend(0, conv, k)
		sends = append(sends, ps)
		buf = append(buf, maskedFrame(ps.frameJSON)...)
		if k == 2 {
			buf = append(buf, maskedFrame([]byte(`{"op":"send","id":"bad",`))...)
		}
	}
	if _, err := client.NetConn().Write(buf); err != nil {
		t.Fatal(err)
	}
	byID := map[string]ackReply{}
	for _, r := range readAcks(t, client, n+1) {
		key := r.ID
		if key == "" {
			key = "bad"
		}
		if _, dup := byID[key]; dup {
			t.Fatalf("two replies to %q", key)
		}
		byID[key] = r
	}
	if r := byID["bad"]; r.T != "err" || r.Code != "bad_json" {
		t.Fatalf("the bad frame's reply %+v, want bad_json", r)
	}
	var ok []pipeSend
	for i, ps := range sends {
		r, found := byID[ps.id]
		switch {
		case !found:
			t.Fatalf("no reply to %s", ps.id)
		case r.T == "res" && len(ok) == i:
			ok = append(ok, ps)
		case r.T == "err" && r.Code == "rate_limited" && i >= 5:
		default:
			t.Fatalf("send %d (%s): reply %+v, want a result for the burst's and rate_limited after", i, ps.id, r)
		}
	}
	if len(ok) < 5 || len(ok) > 6 {
		t.Fatalf("%d sends through, want the burst of 5 (maybe one refilled; a bad frame takes no token)", len(ok))
	}
	checkPipelined(t, e, ok, map[int][]ackReply{0: func() []ackReply {
		var rs []ackReply
		for _, ps := range ok {
			rs = append(rs, byID[ps.id])
		}
		return rs
	}()}, nil)
}
