package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/streams"
)

var testKey = auth.Key{ID: "k1", Alg: auth.AlgHS256, Secret: []byte("natter-test-secret-0123456789abcdef")}

// edgeConfig is the edge configuration the tests use unless they change it.
func edgeConfig() node.EdgeConfig {
	return node.EdgeConfig{
		Auth:      auth.Config{Keys: []auth.Key{testKey}, Audience: "natter-test"},
		Rate:      10_000,
		Burst:     10_000,
		RESTRate:  10_000,
		RESTBurst: 10_000,
		// The deployment-wide limits' own tests set them; the rest load
		// one user and one IP far past them.
		Limits:   limits.Config{UserRate: 10_000, UserBurst: 10_000, UserConns: -1, IPConnRate: -1, IPConns: -1},
		Origins:  []string{"https://app.example"},
		LameDuck: 200 * time.Millisecond,
	}
}

// startNode starts one natter process in-process and stops it at cleanup.
func startNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	if cfg.Mode == node.ModeDev {
		if cfg.DataDir == "" {
			cfg.DataDir = t.TempDir()
		}
		cfg.NATSPort = -1
	}
	if cfg.Edge.Auth.Keys == nil {
		cfg.Edge = edgeConfig()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %v node: %v", cfg.Mode, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

// mesh is a dev node (embedded NATS and store, every worker role, one edge)
// plus optional extra edges and worker replicas on the same NATS.
type mesh struct {
	dev     *node.Node
	edges   []*node.Node
	workers []*node.Node
}

type meshOpts struct {
	edges   int // extra edges besides the dev node's
	workers int // extra worker processes (all roles)
	streams streams.Config
	edge    *node.EdgeConfig
	// readPush is the conversations role's ReadPushInterval (0: default).
	readPush time.Duration
}

func newMesh(t testing.TB, o meshOpts) *mesh {
	t.Helper()
	ec := edgeConfig()
	if o.edge != nil {
		ec = *o.edge
	}
	m := &mesh{dev: startNode(t, node.Config{Mode: node.ModeDev, Streams: o.streams, Edge: ec, ReadPushInterval: o.readPush})}
	m.edges = append(m.edges, m.dev)
	for i := 0; i < o.edges; i++ {
		m.edges = append(m.edges, startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: m.dev.NATSURL(), Streams: o.streams, Edge: ec}))
	}
	for i := 0; i < o.workers; i++ {
		m.workers = append(m.workers, startNode(t, node.Config{Mode: node.ModeWorker, NATSURL: m.dev.NATSURL(), MongoURI: m.dev.MongoURI(), Streams: o.streams, ReadPushInterval: o.readPush}))
	}
	return m
}

func wsURL(n *node.Node) string { return "ws://" + n.Addr() + protocol.Path }

func token(t testing.TB, user string, mut ...func(*auth.MintClaims)) string {
	t.Helper()
	c := auth.MintClaims{User: user, Audience: "natter-test", TTL: time.Hour}
	for _, f := range mut {
		f(&c)
	}
	tok, err := auth.Mint(testKey, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawConn is a bare WebSocket for protocol-level tests.
type rawConn struct {
	t       testing.TB
	conn    *websocket.Conn
	pending []*protocol.ServerFrame // frames reply() read past, for next()
	// user is the hello's; own are the messages this connection sent with
	// send, by conversation: the edge pushes them to the user's other
	// connections only, and collect takes them from here, as an SDK
	// takes them from the ack.
	user string
	own  map[string][]natter.Message
}

func dialRaw(t testing.TB, url string, hdr http.Header) (*rawConn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, hdr)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c}, resp, nil
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// mustDial dials with a token and reads the hello.
func mustDial(t testing.TB, n *node.Node, user string) *rawConn {
	t.Helper()
	c, resp, err := dialRaw(t, wsURL(n), bearer(token(t, user)))
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", user, err, resp)
	}
	if f := c.next(); f.T != protocol.FrameHello || f.Hello.User != user {
		t.Fatalf("want hello for %s, got %+v", user, f)
	}
	c.user = user
	return c
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the next server frame, failing after 10s.
func (c *rawConn) next() *protocol.ServerFrame {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *rawConn) read() (*protocol.ServerFrame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return protocol.DecodeServer(data)
}

// reply reads frames until the reply (res or err) to request id; other
// frames are kept for next().
func (c *rawConn) reply(id string) *protocol.ServerFrame {
	c.t.Helper()
	for i := 0; ; i++ {
		var f *protocol.ServerFrame
		if i < len(c.pending) {
			f = c.pending[i]
		} else {
			var err error
			if f, err = c.read(); err != nil {
				c.t.Fatalf("read: %v", err)
			}
			c.pending = append(c.pending, f)
		}
		if (f.T == protocol.FrameRes && f.ID == id) || (f.T == protocol.FrameErr && (f.Err.ID == id || f.Err.ID == "")) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f
		}
	}
}

// closeCode reads until the socket closes and returns the close code.
func (c *rawConn) closeCode() (int, string) {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, ce.Text
		}
		if strings.Contains(err.Error(), "timeout") {
			c.t.Fatalf("socket not closed: %v", err)
		}
		return -1, err.Error()
	}
}
