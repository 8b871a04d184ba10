package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// limitsConfig is edgeConfig with the deployment-wide limits of l (every
// limit l leaves at zero is off).
func limitsConfig(l limits.Config) node.EdgeConfig {
	off := func(v *float64) {
		if *v == 0 {
			*v = -1
		}
	}
	off(&l.UserRate)
	off(&l.IPConnRate)
	if l.UserConns == 0 {
		l.UserConns = -1
	}
	if l.IPConns == 0 {
		l.IPConns = -1
	}
	if l.Share == 0 {
		l.Share = 100 * time.Millisecond
	}
	ec := edgeConfig()
	ec.Limits = l
	return ec
}

// flood sends from c until deadline (at most max frames), one at a time
// and at most one per every (0: no pause), and counts the sends accepted
// and refused rate_limited.
func (c *rawConn) flood(conv string, deadline time.Time, max int, every time.Duration) (ok, limited int) {
	c.t.Helper()
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for i := 0; i < max && time.Now().Before(deadline); i++ {
		if tick != nil && i > 0 {
			<-tick
		}
		id := fmt.Sprintf("f%d", i)
		c.write(fmt.Sprintf(`{"op":"send","id":%q,"conv":%q,"cmid":"%p-%d","body":"x"}`, id, conv, c, i))
		f := c.reply(id)
		switch {
		case f.T == protocol.FrameRes:
			ok++
		case f.Err.Code == protocol.CodeRateLimited:
			limited++
		default:
			c.t.Errorf("send: %+v", f.Err)
			return
		}
	}
	return ok, limited
}

// TestUserRateAcrossEdges: one user's ten connections, five on each of two
// edges, all sending flat out, get the per-user rate (plus the documented
// slack), not ten or two times it; what was refused is not stored; another
// user in the same conversation is unaffected.
func TestUserRateAcrossEdges(t *testing.T) {
	t.Parallel()
	const rate, burst = 5, 10
	ec := limitsConfig(limits.Config{UserRate: rate, UserBurst: burst})
	m := newMesh(t, meshOpts{edges: 1, edge: &ec})
	bob := mustDial(t, m.edges[1], "rl-bob")
	conns := make([]*rawConn, 10)
	for i := range conns {
		conns[i] = mustDialTok(t, m.edges[i%2], token(t, "rl-alice"), fmt.Sprint("d", i))
	}
	conv := conns[0].createGroup("limited", "rl-bob")

	const window = 4 * time.Second
	start := time.Now()
	deadline := start.Add(window)
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 100 frames/s each, 1,000/s in all: 200 times the limit.
			o, l := c.flood(conv.ID, deadline, 1000, 10*time.Millisecond)
			ok.Add(int64(o))
			limited.Add(int64(l))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	// One bucket: burst + rate x elapsed. Slack: each edge's bucket may be
	// spent once before the other hears of it (one more burst), plus a
	// share interval's refill; a limit per edge would allow 2 x (burst +
	// rate x elapsed) = 60, per connection 10 x that.
	bound := int64(2*burst + rate*(elapsed+1))
	t.Logf("%d sends accepted, %d refused in %.1f s (one bucket: %.0f, bound %d)", ok.Load(), limited.Load(), elapsed, burst+rate*elapsed, bound)
	if ok.Load() > bound {
		t.Errorf("%d sends accepted in %.1f s over two edges and ten connections: more than the bound %d", ok.Load(), elapsed, bound)
	}
	if min := int64(rate * elapsed / 2); ok.Load() < min {
		t.Errorf("only %d sends accepted in %.1f s: the limit refuses more than %d/s", ok.Load(), elapsed, rate)
	}
	if limited.Load() == 0 {
		t.Fatal("no send refused")
	}
	// Nothing refused was stored: the log holds the accepted sends only.
	var got struct {
		Head uint64 `json:"head"`
	}
	bob.request("g", fmt.Sprintf(`{"op":"conv.get","id":"g","conv":%q}`, conv.ID), &got)
	if got.Head != uint64(ok.Load()) {
		t.Errorf("log head %d, want the %d accepted sends", got.Head, ok.Load())
	}
	// Bob, in the same conversation, is not limited by alice's bucket.
	for i := range 5 {
		bob.send(conv.ID, fmt.Sprint("bob", i), "hi")
	}
}

// TestUserConnsAcrossEdges: connections per user count over all edges: a
// user at the bound on one edge is refused on the other (429 too_many with
// a header token; err too_many and close 4029 with an auth frame), and
// accepted again once one is closed. Other users are unaffected.
func TestUserConnsAcrossEdges(t *testing.T) {
	t.Parallel()
	ec := limitsConfig(limits.Config{UserConns: 3})
	m := newMesh(t, meshOpts{edges: 1, edge: &ec})
	a, b := m.edges[0], m.edges[1]
	tok := token(t, "uc-alice")
	held := []*rawConn{mustDialTok(t, a, tok, "d1"), mustDialTok(t, a, tok, "d2"), mustDialTok(t, a, tok, "d3")}
	// On the same edge the bound is exact.
	if c, status, code := dialTok(t, a, tok, "d4"); c != nil || status != http.StatusTooManyRequests || code != string(protocol.CodeTooMany) {
		t.Fatalf("4th connection on the same edge: %d %s, want 429 too_many", status, code)
	}
	// The other edge refuses once a's count has reached it (a share
	// interval); a connection it let in before that is closed again.
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		c, status, code := dialTok(t, b, tok, "d4")
		if c != nil {
			c.conn.Close()
			return fmt.Errorf("4th connection accepted on the other edge")
		}
		if status != http.StatusTooManyRequests || code != string(protocol.CodeTooMany) {
			t.Fatalf("4th connection: %d %s, want 429 too_many", status, code)
		}
		return nil
	})
	// A browser client (auth frame) learns it from an err frame and 4029.
	c, _, err := dialRaw(t, wsURL(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.write(fmt.Sprintf(`{"op":"auth","id":"a","token":%q}`, tok))
	if f := c.next(); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeTooMany {
		t.Fatalf("auth frame past the bound: %+v, want err too_many", f)
	}
	if code, _ := c.closeCode(); code != protocol.CloseTooManyConnections {
		t.Fatalf("close %d, want %d", code, protocol.CloseTooManyConnections)
	}
	// Another user is unaffected.
	mustDial(t, b, "uc-bob")
	// One closed on a: b takes a new one.
	held[0].conn.Close()
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		c, status, code := dialTok(t, b, tok, "d5")
		if c == nil {
			return fmt.Errorf("refused after a connection closed: %d %s", status, code)
		}
		return nil
	})
}

// TestIPConnectionLimits: concurrent connections per IP, connection
// attempts per IP (429 rate_limited with Retry-After), X-Forwarded-For
// ignored unless the peer is a trusted proxy, and then the forwarded client
// counted instead of the proxy.
func TestIPConnectionLimits(t *testing.T) {
	t.Parallel()
	dialXFF := func(n *node.Node, user, xff string) (*rawConn, int, string, *http.Response) {
		h := bearer(token(t, user))
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		c, resp, err := dialRaw(t, wsURL(n), h)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m struct {
				Code string `json:"code"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&m)
			return nil, resp.StatusCode, m.Code, resp
		}
		c.next() // hello
		return c, http.StatusSwitchingProtocols, "", resp
	}
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		ec := limitsConfig(limits.Config{IPConns: 3})
		n := startNode(t, node.Config{Mode: node.ModeDev, Edge: ec})
		var held []*rawConn
		for i := range 3 {
			c, status, code, _ := dialXFF(n, fmt.Sprint("ip", i), fmt.Sprint("198.51.100.", i))
			if c == nil {
				t.Fatalf("connection %d refused: %d %s", i, status, code)
			}
			held = append(held, c)
		}
		// X-Forwarded-For is not trusted by default: a new "client" behind
		// the same peer counts against the peer.
		if c, status, code, _ := dialXFF(n, "ip3", "198.51.100.9"); c != nil || status != http.StatusTooManyRequests || code != string(protocol.CodeTooMany) {
			t.Fatalf("4th connection from one IP: %d %s, want 429 too_many", status, code)
		}
		held[0].conn.Close()
		testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			if c, status, code, _ := dialXFF(n, "ip3", ""); c == nil {
				return fmt.Errorf("refused after one closed: %d %s", status, code)
			}
			return nil
		})
	})
	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		ec := limitsConfig(limits.Config{IPConnRate: 0.2, IPConnBurst: 3})
		n := startNode(t, node.Config{Mode: node.ModeDev, Edge: ec})
		for i := range 3 {
			if c, status, code, _ := dialXFF(n, fmt.Sprint("ipr", i), ""); c == nil {
				t.Fatalf("attempt %d refused: %d %s", i, status, code)
			}
		}
		c, status, code, resp := dialXFF(n, "ipr3", "")
		if c != nil || status != http.StatusTooManyRequests || code != string(protocol.CodeRateLimited) {
			t.Fatalf("4th attempt: %d %s, want 429 rate_limited", status, code)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
			t.Fatalf("Retry-After %q, want 1..5 s", resp.Header.Get("Retry-After"))
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		ec := limitsConfig(limits.Config{IPConns: 1, TrustedProxies: []string{"127.0.0.0/8"}})
		n := startNode(t, node.Config{Mode: node.ModeDev, Edge: ec})
		if c, status, code, _ := dialXFF(n, "tp0", "203.0.113.5"); c == nil {
			t.Fatalf("first client refused: %d %s", status, code)
		}
		// A forged address further left does not help: the rightmost
		// untrusted one counts.
		if c, status, code, _ := dialXFF(n, "tp1", "192.0.2.1, 203.0.113.5"); c != nil || status != http.StatusTooManyRequests || code != string(protocol.CodeTooMany) {
			t.Fatalf("same client again: %d %s, want 429 too_many", status, code)
		}
		if c, status, code, _ := dialXFF(n, "tp2", "203.0.113.6"); c == nil {
			t.Fatalf("another client behind the proxy refused: %d %s", status, code)
		}
	})
}

// TestRESTRateAcrossEdges: the REST limit is per user over all edges: 429
// rate_limited with Retry-After, the requests accepted over two edges
// within the bound, and another user unaffected.
func TestRESTRateAcrossEdges(t *testing.T) {
	t.Parallel()
	const rate, burst = 2, 5
	ec := limitsConfig(limits.Config{})
	ec.RESTRate, ec.RESTBurst = rate, burst
	m := newMesh(t, meshOpts{edges: 1, edge: &ec})
	tok := token(t, "rr-alice")
	get := func(n *node.Node, tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Addr()+"/v1/conversations/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const window = 3 * time.Second
	start := time.Now()
	ok, limited := 0, 0
	var refused *http.Response
	for i := 0; time.Since(start) < window && i < 3000; i++ {
		resp := get(m.edges[i%2], tok)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			refused = resp
		default:
			t.Fatalf("GET: %s", resp.Status)
		}
	}
	elapsed := time.Since(start).Seconds()
	bound := int(2*burst + rate*(elapsed+1))
	t.Logf("%d accepted, %d refused in %.1f s (bound %d)", ok, limited, elapsed, bound)
	if refused == nil {
		t.Fatal("no request refused")
	}
	if ok > bound {
		t.Errorf("%d REST requests accepted in %.1f s over two edges: more than the bound %d", ok, elapsed, bound)
	}
	if ra, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", refused.Header.Get("Retry-After"))
	}
	if resp := get(m.edges[1], token(t, "rr-bob")); resp.StatusCode != http.StatusOK {
		t.Errorf("another user: %s", resp.Status)
	}
}

// TestLimitsNoRoundTripPerFrame: the limits cost no NATS message per
// frame: the usage reports on im.limits.usage come once per share interval
// however many sends there are, and a send refused by the per-user limit
// causes no NATS traffic at all.
func TestLimitsNoRoundTripPerFrame(t *testing.T) {
	t.Parallel()
	const share = 200 * time.Millisecond
	ec := limitsConfig(limits.Config{UserRate: 10_000, UserBurst: 10_000, Share: share})
	m := newMesh(t, meshOpts{edge: &ec})
	nc := testenv.Connect(t, m.dev.NATSURL())
	var usage, all atomic.Int64
	if _, err := nc.Subscribe(subjects.LimitsUsage, func(*nats.Msg) { usage.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(">", func(*nats.Msg) { all.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, m.dev, "rt-alice")
	conv := c.createDirect("rt-bob")
	const n = 300
	u0, start := usage.Load(), time.Now()
	for i := range n {
		c.send(conv.ID, fmt.Sprint("m", i), "x")
	}
	elapsed := time.Since(start)
	reports := usage.Load() - u0
	if max := int64(elapsed/share) + 2; reports > max {
		t.Errorf("%d usage reports for %d sends in %v: more than one per %v (%d)", reports, n, elapsed, share, max)
	}
	t.Logf("%d sends in %v: %d usage reports", n, elapsed, reports)

	// Refused sends: a user whose bucket is empty.
	ec2 := limitsConfig(limits.Config{UserRate: 0.01, UserBurst: 1, Share: share})
	m2 := newMesh(t, meshOpts{edge: &ec2})
	nc2 := testenv.Connect(t, m2.dev.NATSURL())
	var all2 atomic.Int64
	if _, err := nc2.Subscribe(">", func(*nats.Msg) { all2.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	c2 := mustDial(t, m2.dev, "rt-carol")
	conv2 := c2.createDirect("rt-dave")
	c2.send(conv2.ID, "first", "x") // the one token
	a0, start := all2.Load(), time.Now()
	_, limited := c2.flood(conv2.ID, time.Now().Add(time.Minute), n, 0)
	elapsed = time.Since(start)
	msgs := all2.Load() - a0
	t.Logf("%d refused sends in %v: %d NATS messages of any kind meanwhile", limited, elapsed, msgs)
	if limited != n {
		t.Fatalf("%d of %d sends refused", limited, n)
	}
	// Background traffic (heartbeats, pulls, reports) goes on; a round
	// trip per frame would be at least n.
	if msgs >= n/4 {
		t.Errorf("%d NATS messages for %d refused sends", msgs, n)
	}
}
