package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/jetstream/convapi"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/natter-im/natter/internal/certreload"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/workers/store"
)

// stopper is a started component; Stop drains it within ctx.
type stopper interface {
	Stop(ctx context.Context) error
}

// Node is one running natter process.
type Node struct {
	cfg Config
	log *slog.Logger

	lock     *os.File // the data dir's lock (LockFile) in dev mode with an embedded server
	natsSrv  *natsembed.Server
	embStore *store.Embedded
	natsURL  string
	mongoURI string

	nc *nats.Conn
	js jetstream.JetStream
	// bulk are the connections that carry deliveries (the edge's per-user
	// subscriptions, the fan-out role's publishes) and the runners'
	// consumers, apart from nc.
	bulk  []*nats.Conn
	cjs   jetstream.JetStream // the runners' (on a bulk connection); nil until needed
	store *store.Store
	reg   *prometheus.Registry

	mlog    *msglog.Log          // shared by the edge and the roles; nil until needed
	members *convapi.MemberCache // shared by the roles; nil until needed
	frozen  *revoke.View         // REVOKED for the api and ingest roles' freeze checks; nil until needed

	app    *fiber.App
	ln     net.Listener
	certs  *certreload.Reloader // the edge's TLS pair; nil without TLS
	served chan error

	edge    stopper   // stopped first
	workers []stopper // stopped in reverse start order after the edge
	checks  []readyCheck

	started      bool // Start succeeded: Shutdown logs the stop
	shutdownOnce sync.Once
	shutdownErr  error
}

// Start runs a process in cfg.Mode. On any error everything already started
// is stopped again before Start returns: there is no half-started node.
// Errors caused by one setting are *SettingError.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	cfg = cfg.withDefaults()
	if err := validate(cfg); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, log: cfg.Logger, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = n.Shutdown(sctx)
			n = nil
		}
	}()

	// Lock the data dir before anything touches it: a second natter dev on
	// it would run a second JetStream server and store on the same files.
	if usesDataDir(cfg) {
		if n.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return n, err
		}
	}
	// Bind the public port first: a busy port fails before anything starts.
	addr, setting := cfg.HTTPAddr, SettingHTTP
	if cfg.Mode == ModeWorker {
		addr, setting = cfg.AdminAddr, SettingAdmin
	}
	if n.ln, err = listen(setting, addr); err != nil {
		return n, err
	}
	if cfg.Mode != ModeWorker && cfg.EdgeTLS.on() {
		if err := n.serveTLS(); err != nil {
			return n, err
		}
	}

	n.natsURL = cfg.NATSURL
	if n.natsURL == "" {
		if n.natsSrv, err = startEmbeddedNATS(cfg); err != nil {
			return n, err
		}
		n.natsURL = n.natsSrv.ClientURL()
	}
	runsStore := cfg.Mode != ModeEdge && needsStore(cfg.Roles)
	n.mongoURI = cfg.MongoURI
	if n.mongoURI == "" && runsStore {
		if n.embStore, err = startEmbeddedStore(ctx, cfg); err != nil {
			return n, err
		}
		n.mongoURI = n.embStore.URI()
	}

	if n.nc, err = connectNATS(cfg, n.natsURL, "natter-"+cfg.Mode.String()); err != nil {
		return n, err
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		return n, fmt.Errorf("node: jetstream: %w", err)
	}
	changes, err := ensureStreams(ctx, n.js, cfg.Streams, n.log)
	if err != nil {
		return n, settingErr(SettingNATSURL, "JetStream not usable: %v", err)
	}
	for _, c := range changes {
		if c.Action == "differs" {
			n.log.Warn("jetstream definition differs from this process's settings; left as it is (run natter streams apply to change it)", "change", c.String())
			continue
		}
		n.log.Info("jetstream definition applied", "change", c.String())
	}
	n.checks = append(n.checks, natsReady(n.nc), func(ctx context.Context) error {
		_, err := n.js.AccountInfo(ctx)
		return err
	})

	if runsStore {
		sqliteDir := ""
		if n.embStore != nil {
			sqliteDir = n.embStore.SQLiteDir()
		}
		if n.store, err = openStore(ctx, cfg, n.mongoURI, sqliteDir); err != nil {
			return n, err
		}
		n.checks = append(n.checks, n.store.Ping)
	}

	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), opsCollector{n})
	n.app = newApp(n)
	acfg := cfg.Admin
	acfg.Logger = n.log.With("component", "admin")
	if n.store != nil {
		acfg.Archive = n.store
	}
	admin.Register(n.app, acfg, n.js)

	if cfg.Mode != ModeEdge {
		if err := n.startRoles(ctx); err != nil {
			return n, err
		}
	}
	if cfg.Mode != ModeWorker {
		if err := n.startEdge(ctx); err != nil {
			return n, err
		}
	}

	go func() { n.served <- n.app.Listener(n.ln) }()
	n.started = true
	ready := []any{"mode", cfg.Mode.String(), "http", n.ln.Addr().String()}
	if n.certs != nil {
		ready = append(ready, "tls", true)
	}
	if cfg.Mode != ModeWorker {
		ready = append(ready, "origins", originsOf(cfg.Edge))
	}
	if cfg.WebApp && cfg.Mode != ModeWorker {
		ready = append(ready, "app", n.scheme()+"://"+n.ln.Addr().String()+"/")
	}
	ready = append(ready, "nats", RedactNATSURL(n.natsURL), "mongo", RedactMongoURI(n.mongoURI), "embedded_nats", n.natsSrv != nil,
		"embedded_mongo", n.embStore != nil, "roles", rolesOf(cfg))
	n.log.Info("natter ready", ready...)
	return n, nil
}

// usesDataDir reports whether a node of c keeps files in c.DataDir: a dev
// node that runs an embedded server.
func usesDataDir(c Config) bool {
	return c.Mode == ModeDev && (c.NATSURL == "" || c.MongoURI == "" && needsStore(c.Roles))
}

// originsOf is the browser Origins the edge allows, for the ready line:
// comma-separated, or "none" (browser pages are refused; native clients,
// which send no Origin, pass).
func originsOf(e EdgeConfig) string {
	if len(e.Origins) == 0 {
		return "none"
	}
	return strings.Join(e.Origins, ",")
}

func rolesOf(c Config) []string {
	if c.Mode == ModeEdge {
		return nil
	}
	return c.Roles
}

// Addr is the address of the HTTP listener (edge, or admin for a worker).
func (n *Node) Addr() string { return n.ln.Addr().String() }

// NATSURL is the NATS URL the node uses (the embedded server's in dev mode).
func (n *Node) NATSURL() string { return n.natsURL }

// NATSServer is the embedded NATS server (nil without one).
func (n *Node) NATSServer() *natsembed.Server { return n.natsSrv }

// MongoURI is the MongoDB URI the node uses ("" for an edge).
func (n *Node) MongoURI() string { return n.mongoURI }

// Store is the node's MongoDB store (nil for an edge).
func (n *Node) Store() *store.Store { return n.store }

// Done is closed with the HTTP server's exit error if it stops on its own.
func (n *Node) Done() <-chan error { return n.served }

// Ready runs every readiness check.
func (n *Node) Ready(ctx context.Context) error {
	for _, c := range n.checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Shutdown stops the node in order: the edge stops accepting and closes its
// sockets over the lame-duck interval, the HTTP server stops, workers drain
// their consumers, micro services stop, the NATS connection drains, the
// store disconnects, and embedded servers stop. Safe to call twice.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.shutdown(ctx) })
	return n.shutdownErr
}

func (n *Node) shutdown(ctx context.Context) error {
	var errs []error
	if n.edge != nil {
		errs = append(errs, n.edge.Stop(ctx))
	}
	if n.app != nil {
		errs = append(errs, n.app.ShutdownWithContext(ctx))
	} else if n.ln != nil {
		errs = append(errs, n.ln.Close())
	}
	for i := len(n.workers) - 1; i >= 0; i-- {
		errs = append(errs, n.workers[i].Stop(ctx))
	}
	for _, nc := range n.bulk {
		errs = append(errs, drain(ctx, nc))
	}
	if n.nc != nil {
		errs = append(errs, drain(ctx, n.nc))
	}
	if n.store != nil {
		errs = append(errs, n.store.Close(ctx))
	}
	if n.certs != nil {
		n.certs.Stop()
	}
	if n.embStore != nil {
		errs = append(errs, n.embStore.Stop(ctx))
	}
	if n.natsSrv != nil {
		n.natsSrv.Stop()
	}
	if n.lock != nil {
		errs = append(errs, unlockDataDir(n.lock))
		n.lock = nil
	}
	err := errors.Join(errs...)
	if err != nil {
		n.log.Warn("shutdown incomplete", "err", err)
	} else if n.started {
		n.log.Info("natter stopped")
	}
	return err
}

// bulkConn opens a NATS connection of its own for purpose, for a part of
// the node that moves deliveries: thousands of messages a second that would
// otherwise queue, in both directions, with the requests and JetStream
// acks of the node's main connection (a send's append waiting behind a
// group's fan-out). Readiness covers it; Shutdown drains it after the
// workers.
func (n *Node) bulkConn(purpose string) (*nats.Conn, error) {
	nc, err := connectNATS(n.cfg, n.natsURL, "natter-"+n.cfg.Mode.String()+"-"+purpose)
	if err != nil {
		return nil, err
	}
	n.bulk = append(n.bulk, nc)
	n.checks = append(n.checks, natsReady(nc))
	return nc, nil
}

// drain drains nc and waits until it is closed.
func drain(ctx context.Context, nc *nats.Conn) error {
	if nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("node: nats drain: %w", ctx.Err())
	}
}

// ensureWait bounds how long a starting process retries the JetStream
// definitions while the cluster cannot answer (a node restarting, a leader
// election): a worker started during a NATS disruption waits it out instead
// of exiting.
const ensureWait = 30 * time.Second

// ensureStreams runs streams.Ensure, retrying errors that a cluster in
// transition gives (timeouts, no responders, no leader yet) for up to
// ensureWait. A server without JetStream fails at once.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg streams.Config, log *slog.Logger) ([]streams.Change, error) {
	deadline := time.Now().Add(ensureWait)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		changes, err := streams.Ensure(actx, js, cfg)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
			ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return changes, err
		}
		log.Warn("jetstream not answering yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return changes, err
		case <-time.After(wait):
		}
	}
}
