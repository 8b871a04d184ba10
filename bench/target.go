package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// target is the natter under test: in-process (started by the bench) or
// running edges named by --url.
type target struct {
	local    bool
	urls     []string
	key      auth.Key
	aud, iss string
	natsURL  string // "" when unknown (remote without --nats-url)
	mongoURI string
	dir      string

	dev   *node.Node
	edges []*node.Node // extra in-process edges; urls[i] belongs to edges[i-1] when the dev edge is in urls
	// eprocs are the edges run as their own processes (targetOpts.edgeBin),
	// in the order of urls; storm replaces eprocs[0] as it restarts it.
	eprocs []*edgeProc
	ecfg   node.EdgeConfig
	scfg   streams.Config
	devCfg node.Config // the in-process dev node's, to restart it (memory)

	nc *nats.Conn // to natsURL, for consumer info and fills; nil when unknown
	js jetstream.JetStream

	// pids are the server processes of a running target whose CPU (and,
	// for idle, RSS: the first) is measured: --edge-pid, else the processes
	// listening on the local ports of --url, --nats-url and --mongo-uri.
	// Empty: not measured.
	pids []int
	// pidsFrom says how pids were found.
	pidsFrom string
}

// targetOpts shape an in-process target.
type targetOpts struct {
	// edges is how many client-facing edges to run (0 means 1: the dev
	// node's own).
	edges int
	// edgeBin, when set, runs every client-facing edge as its own
	// `natter edge` process of this natter binary on the dev node's NATS
	// (the dev node's own edge is then not among the URLs), so that storm
	// can kill one.
	edgeBin string
	// verbose receives the edge processes' log lines. Nil means none.
	verbose io.Writer
	// roles of the dev node (nil: all).
	roles []string
	// streams sizes the JetStream definitions.
	streams streams.Config
}

// devKey is a fresh signing key for an in-process target: 32 random bytes,
// hex-encoded so that an edge process can take it as its --jwt-secret
// (key id "default").
func devKey() (auth.Key, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return auth.Key{}, err
	}
	return auth.Key{ID: "default", Alg: auth.AlgHS256, Secret: []byte(hex.EncodeToString(raw))}, nil
}

// startTarget starts natter in-process unless cfg names edges.
func startTarget(ctx context.Context, cfg *Config, o targetOpts) (*target, error) {
	if len(cfg.URLs) > 0 {
		return remoteTarget(cfg)
	}
	key, err := devKey()
	if err != nil {
		return nil, fmt.Errorf("bench: key: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "natter-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	t := &target{local: true, key: key, aud: "natter-bench", dir: dir, scfg: o.streams}
	t.ecfg = node.EdgeConfig{
		Auth:  auth.Config{Keys: []auth.Key{key}, Audience: t.aud},
		Rate:  1e6,
		Burst: 1_000_000,
		// A load generator is one IP with many connections and users
		// sending flat out: the deployment-wide limits are off.
		Limits:       limits.Config{UserRate: -1, UserConns: -1, IPConnRate: -1, IPConns: -1},
		PingInterval: cfg.PingInterval,
		LameDuck:     cfg.LameDuck,
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.Verbose {
		logger = slog.New(slog.NewTextHandler(cfg.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	roles := o.roles
	if roles == nil {
		roles = cfg.Roles
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t.devCfg = node.Config{
		Mode: node.ModeDev, DataDir: dir, NATSPort: -1, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Roles: roles, Streams: o.streams, Edge: t.ecfg, Logger: logger, ShutdownTimeout: 30 * time.Second,
	}
	t.dev, err = node.Start(sctx, t.devCfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start natter dev: %w", err)
	}
	t.natsURL, t.mongoURI = t.dev.NATSURL(), t.dev.MongoURI()
	n := max(o.edges, 1)
	if o.edgeBin == "" {
		t.urls = append(t.urls, wsURL(t.dev.Addr()))
		n--
	}
	for i := 0; i < n; i++ {
		if o.edgeBin != "" {
			p, err := t.startEdgeProc(sctx, o.edgeBin, "127.0.0.1:0", o.verbose)
			if err != nil {
				t.close()
				return nil, err
			}
			t.eprocs = append(t.eprocs, p)
			t.urls = append(t.urls, wsURL(p.addr))
			continue
		}
		e, err := t.startEdge(sctx, "127.0.0.1:0")
		if err != nil {
			t.close()
			return nil, err
		}
		t.edges = append(t.edges, e)
		t.urls = append(t.urls, wsURL(e.Addr()))
	}
	if err := t.connect(); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// startEdge runs an edge node on the dev node's NATS at addr.
func (t *target) startEdge(ctx context.Context, addr string) (*node.Node, error) {
	e, err := node.Start(ctx, node.Config{Mode: node.ModeEdge, NATSURL: t.natsURL, HTTPAddr: addr,
		Streams: t.scfg, Edge: t.ecfg, ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bench: start edge: %w", err)
	}
	return e, nil
}

func wsURL(addr string) string { return "ws://" + addr + protocol.Path }

func remoteTarget(cfg *Config) (*target, error) {
	if len(cfg.JWTSecret) < auth.MinSecretLen {
		return nil, fmt.Errorf("bench: --jwt-secret: the edges' HS256 signing key (at least %d bytes) is required with --url", auth.MinSecretLen)
	}
	t := &target{urls: cfg.URLs, key: auth.Key{ID: cfg.JWTKeyID, Alg: auth.AlgHS256, Secret: []byte(cfg.JWTSecret)},
		aud: cfg.JWTAudience, iss: cfg.JWTIssuer, natsURL: cfg.NATSURL, mongoURI: cfg.MongoURI}
	if t.natsURL != "" {
		if err := t.connect(); err != nil {
			return nil, err
		}
	}
	t.findPIDs(cfg)
	return t, nil
}

// findPIDs sets the server processes of a running target: --edge-pid, else
// the processes of this machine that listen on the ports of the edge URLs,
// the NATS URLs and the MongoDB URI (edges first). A worker process
// listens on none of those: give --edge-pid for it.
func (t *target) findPIDs(cfg *Config) {
	if len(cfg.EdgePIDs) > 0 {
		t.pids, t.pidsFrom = slices.Clone(cfg.EdgePIDs), "--edge-pid"
		return
	}
	var ports []uint16
	for _, u := range t.urls {
		ports = append(ports, localPort(u))
	}
	for _, u := range strings.Split(t.natsURL, ",") {
		ports = append(ports, localPort(strings.TrimSpace(u)))
	}
	ports = append(ports, localPort(t.mongoURI))
	ports = slices.DeleteFunc(ports, func(p uint16) bool { return p == 0 })
	if len(ports) == 0 {
		return
	}
	found, err := listenerPIDs(ports)
	if err != nil {
		return
	}
	var where []string
	for _, p := range ports {
		if pid := found[p]; pid > 0 && !slices.Contains(t.pids, pid) {
			t.pids = append(t.pids, pid)
			where = append(where, fmt.Sprintf("%d on :%d", pid, p))
		}
	}
	if len(t.pids) > 0 {
		t.pidsFrom = "listening: " + strings.Join(where, ", ")
	}
}

func (t *target) connect() error {
	nc, err := nats.Connect(t.natsURL, nats.Name("natter-bench"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("bench: nats %s: %w", t.natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("bench: jetstream: %w", err)
	}
	t.nc, t.js = nc, js
	return nil
}

func (t *target) close() {
	if t.nc != nil {
		t.nc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range t.eprocs {
		if p != nil {
			p.kill()
		}
	}
	for _, e := range t.edges {
		if e != nil {
			_ = e.Shutdown(ctx)
		}
	}
	if t.dev != nil {
		_ = t.dev.Shutdown(ctx)
	}
	if t.dir != "" {
		_ = os.RemoveAll(t.dir)
	}
}

func (t *target) name() string {
	if t.local {
		return "in-process natter dev"
	}
	return strings.Join(t.urls, ",")
}

func mintToken(key auth.Key, aud, iss, user string) (string, error) {
	return auth.Mint(key, nil, auth.MintClaims{User: user, Audience: aud, Issuer: iss, TTL: 24 * time.Hour})
}

// persistPending is the PERSIST consumer's pending + unacked count, -1 when
// it cannot be read.
func (t *target) persistPending(ctx context.Context) int64 {
	p, _, err := t.persistInfo(ctx)
	if err != nil {
		return -1
	}
	return int64(p)
}

// persistInfo returns the PERSIST backlog and its ack floor (stream seq).
func (t *target) persistInfo(ctx context.Context) (backlog, floor uint64, err error) {
	if t.js == nil {
		return 0, 0, errors.New("bench: no NATS access (--nats-url)")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := t.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: consumer %s: %w", subjects.ConsumerPersist, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: consumer %s: %w", subjects.ConsumerPersist, err)
	}
	return info.NumPending + uint64(info.NumAckPending), info.AckFloor.Stream, nil
}

// clientSpec is how a job dials natter.
type clientSpec struct {
	urls  []string
	key   auth.Key
	aud   string
	iss   string
	addrs []net.IP
	src   *addrCount // nil: not counted
	// onDial, when set, is told of every TCP dial of connection i (err nil:
	// connected).
	onDial func(i int, err error)
}

func specOf(j job, lv *live) (clientSpec, error) {
	s := clientSpec{urls: j.URLs, key: auth.Key{ID: j.KeyID, Alg: auth.AlgHS256, Secret: j.Secret}, aud: j.Audience, iss: j.Issuer, src: &lv.src}
	for _, a := range j.SourceAddrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return s, fmt.Errorf("bench: source address %q", a)
		}
		s.addrs = append(s.addrs, ip)
	}
	return s, nil
}

// localAddr is the source address of connection i (nil: any).
func (s clientSpec) localAddr(i int) *net.TCPAddr {
	if len(s.addrs) == 0 {
		return nil
	}
	return &net.TCPAddr{IP: s.addrs[i%len(s.addrs)]}
}

// netDial dials from connection i's source address and counts the
// socket's local address.
func (s clientSpec) netDial(ctx context.Context, network, addr string, i int) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 30 * time.Second}
	if la := s.localAddr(i); la != nil {
		nd.LocalAddr = la
	}
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil && s.src != nil {
		s.src.add(c)
	}
	if s.onDial != nil {
		s.onDial(i, err)
	}
	return c, err
}

// dial connects user over urls (the first that answers) as connection i.
func (s clientSpec) dial(ctx context.Context, user string, urls []string, i int) (*client.Client, error) {
	tok, err := mintToken(s.key, s.aud, s.iss, user)
	if err != nil {
		return nil, err
	}
	d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.netDial(ctx, network, addr, i)
		}}
	return client.Dial(ctx, client.Config{URLs: urls, Token: tok, AutoAck: -1, Dialer: d,
		RequestTimeout: 30 * time.Second})
}
