package edge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/settings"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Deps are the edge's connections to the mesh.
type Deps struct {
	NC *nats.Conn
	// DeliverNC carries the per-user delivery subscriptions; nil means NC.
	// A connection of their own keeps a group's burst of deliveries from
	// queueing in front of the replies to this edge's requests.
	DeliverNC *nats.Conn
	JS        jetstream.JetStream
	Log       *msglog.Log
	Convs     *convapi.Client
	Members   *convapi.MemberCache
	// Attach stores attachment bytes; nil means the JetStream object store
	// (attachments.OpenObjectStore).
	Attach attachments.Store
	// Registerer for the edge's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Edge serves client WebSockets and REST.
type Edge struct {
	cfg       Config
	log       *slog.Logger
	nc        *nats.Conn
	msgs      *msglog.Log
	convs     *convapi.Client
	members   *convapi.MemberCache
	curs      *cursors.Bucket  // CURSORS: delivered and read cursors
	acts      *actions.Bucket  // ACTIONS: edits, deletions, reactions
	settings  *settings.Bucket // SETTINGS: users' conversation settings
	pushes    *pushreg.Bucket  // PUSH: the devices' push registrations
	verifier  *auth.Verifier
	hub       *hub
	m         *metrics
	upgrader  websocket.Upgrader
	limits    *limits.Shared // per-user limits shared between edges
	ips       *limits.IPs    // per-IP connection limits of this edge
	proxies   limits.Proxies // trusted proxies (X-Forwarded-For)
	convPush  *convPusher    // membership pushes
	presence  *presence
	revoked   *revoke.View // REVOKED, in memory
	admin     *adminSubs   // the admin API's requests
	js        jetstream.JetStream
	epoch     time.Time // since() counts from here (monotonic)
	origins   map[string]bool
	anyOrigin bool
	app       map[string]appFile // the web app's files by path; nil: none
	attStore  attachments.Store  // attachment bytes
	attMeta   *attachments.Bucket

	// pool runs the sessions' requests and writers (gopool.go).
	pool goPool
	// deadlines are the contexts of the sessions' requests.
	deadlines deadlines

	draining atomic.Bool
	wg       sync.WaitGroup // one per upgraded connection
	stopOnce sync.Once
	stopErr  error
}

// ErrAuthSettings wraps what New returns when the token verification
// settings (Config.Auth) are unusable, as apart from a failure of the mesh
// (the cursors bucket, the broadcast subscription).
var ErrAuthSettings = errors.New("edge: token verification settings")

// New builds an edge. ctx bounds start-up (JWKS fetch) and keeps the JWKS
// refresh running until it is done.
func New(ctx context.Context, cfg Config, d Deps) (*Edge, error) {
	cfg = cfg.WithDefaults()
	v, err := auth.New(ctx, cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuthSettings, err)
	}
	var files map[string]appFile
	if cfg.App != nil {
		if files, err = loadApp(cfg.App); err != nil {
			return nil, fmt.Errorf("edge: web app: %w", err)
		}
	}
	proxies, err := limits.ParseProxies(cfg.Limits.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	curs, err := cursors.Open(ctx, d.NC, d.JS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	acts, err := actions.Open(ctx, d.NC, d.JS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	sets, err := settings.Open(ctx, d.NC, d.JS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	pushes, err := pushreg.Open(ctx, d.NC, d.JS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	attMeta, err := attachments.OpenBucket(ctx, d.JS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if d.Attach == nil {
		if d.Attach, err = attachments.OpenObjectStore(ctx, d.JS); err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
	}
	if len(cfg.Attach.URLSecret) == 0 {
		cfg.Attach.URLSecret = make([]byte, 32)
		_, _ = rand.Read(cfg.Attach.URLSecret)
	}
	e := &Edge{
		acts: acts, cfg: cfg, log: cfg.Logger, nc: d.NC, msgs: d.Log, convs: d.Convs, members: d.Members,
		curs: curs, settings: sets, pushes: pushes, verifier: v, m: newMetrics(d.Registerer), origins: map[string]bool{}, epoch: time.Now(),
		ips: limits.NewIPs(cfg.Limits), proxies: proxies, js: d.JS, app: files,
		attStore: d.Attach, attMeta: attMeta,
	}
	dnc := d.DeliverNC
	if dnc == nil {
		dnc = d.NC
	}
	if e.hub, err = newHub(dnc, e.m, cfg.PingInterval, e.since, d.Members); err != nil {
		return nil, err
	}
	if e.convPush, err = e.startConvPushes(d.NC); err != nil {
		e.hub.stop()
		return nil, err
	}
	if e.presence, err = e.startPresence(dnc, d.JS); err != nil {
		e.convPush.stop()
		e.hub.stop()
		return nil, err
	}
	e.hub.presence = e.presence
	if e.limits, err = limits.Start(d.NC, cfg.EdgeID, cfg.Limits, e.log); err != nil {
		e.presence.stop()
		e.convPush.stop()
		e.hub.stop()
		return nil, fmt.Errorf("edge: %w", err)
	}
	rkv, err := d.JS.KeyValue(ctx, subjects.BucketRevoked)
	if err == nil {
		e.revoked, err = revoke.Watch(ctx, rkv, e.log, e.enforceRevocations)
	}
	if err != nil {
		e.limits.Stop()
		e.presence.stop()
		e.convPush.stop()
		e.hub.stop()
		return nil, fmt.Errorf("edge: revocations bucket: %w", err)
	}
	if e.admin, err = e.startAdmin(d.NC); err != nil {
		e.revoked.Stop()
		e.limits.Stop()
		e.presence.stop()
		e.convPush.stop()
		e.hub.stop()
		return nil, err
	}
	for _, o := range cfg.Origins {
		if o == "*" {
			e.anyOrigin = true
		}
		e.origins[o] = true
	}
	e.upgrader = newUpgrader(cfg)
	return e, nil
}

// readBuffer is the read buffer of a WebSocket.
const readBuffer = 512

// newUpgrader returns the edge's WebSocket upgrader.
func newUpgrader(cfg Config) websocket.Upgrader {
	return websocket.Upgrader{
		HandshakeTimeout: cfg.WriteTimeout,
		// An idle socket keeps its read buffer: a small one holds a frame
		// header and a short request; longer frames are read past it,
		// straight into the message.
		ReadBufferSize:  readBuffer,
		WriteBufferSize: 4096,
		// Idle sockets hold no write buffer: it is taken from the pool for
		// a write and given back after.
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{protocol.Subprotocol},
		// Origin, version and key are checked (with a JSON answer) before
		// the hijack: the upgrader cannot answer errors any more.
		CheckOrigin: func(*http.Request) bool { return true },
		Error:       func(http.ResponseWriter, *http.Request, int, error) {},
	}
}

// Register adds the WebSocket and REST routes to app, natter dev's token
// endpoint when Config.DevTokens is set and the web app when Config.App is:
// register the process's own routes before it (the app's catch all). It sets the app's
// server to keep hijacked connections open (fasthttp would close them when
// its hijack handler returns): the edge hands each WebSocket to a goroutine
// of its own, so that fasthttp's request context and buffers go back to
// their pools at once, and closes the socket itself.
//
// It also turns on request body streaming (uploads go to storage as they
// arrive): every other route gets its body read whole, bounded by MaxBody,
// by a guard registered first.
func (e *Edge) Register(app *fiber.App) {
	app.Server().KeepHijackedConns = true
	app.Server().StreamRequestBody = true
	app.Server().HeaderReceived = e.requestConfig
	app.Use(e.bodyGuard)
	app.Get(protocol.Path, e.handleWebSocket)
	e.registerAttach(app)
	e.registerREST(app)
	e.registerPushREST(app)
	if e.cfg.DevTokens != nil {
		app.Post(DevTokenPath, e.handleDevToken)
	}
	if e.app != nil {
		e.registerApp(app)
	}
}

// Stop puts the edge in lame-duck mode: it refuses new connections, then
// closes the open ones spread over the lame-duck interval, each with a bye
// frame telling the client to reconnect (elsewhere) and close code 4010,
// and waits for them to finish. Safe to call twice.
func (e *Edge) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { e.stopErr = e.stop(ctx) })
	return e.stopErr
}

func (e *Edge) stop(ctx context.Context) error {
	e.draining.Store(true)
	sessions := e.hub.sessions()
	if n := len(sessions); n > 0 {
		e.log.Info("lame duck: closing sessions", "n", n, "over", e.cfg.LameDuck)
		step := e.cfg.LameDuck / time.Duration(n)
		t := time.NewTimer(0)
		defer t.Stop()
	loop:
		for _, s := range sessions {
			select {
			case <-t.C:
			case <-ctx.Done():
				break loop
			}
			s.close(protocol.CloseGoingAway, "edge shutting down: reconnect", true, true)
			t.Reset(step)
		}
		// Whatever is left when ctx ran out closes at once.
		for _, s := range sessions {
			s.close(protocol.CloseGoingAway, "edge shutting down: reconnect", true, true)
		}
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.pool.stop()
		e.deadlines.stop()
		e.admin.stop()
		e.revoked.Stop()
		e.limits.Stop()
		e.convPush.stop()
		e.presence.stop()
		e.hub.stop()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("edge: stop: %w", ctx.Err())
	}
}

// since is the edge's monotonic clock in nanoseconds.
func (e *Edge) since() int64 { return int64(time.Since(e.epoch)) }

// errorCode maps an error from the mesh to the client's code and message.
func (e *Edge) errorCode(err error) (protocol.Code, string) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code, pe.Msg
	}
	var rl *rateLimited
	if errors.As(err, &rl) {
		return protocol.CodeRateLimited, rl.msg
	}
	var ce *convapi.Error
	if errors.As(err, &ce) {
		code, msg, ok := convError(ce)
		if !ok {
			e.log.Error("conversations service answered an unknown error code", "code", ce.Code, "err", err)
		}
		return code, msg
	}
	var ae *jetstream.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == 503:
		return protocol.CodeUnavailable, "temporarily unavailable: retry"
	case errors.Is(err, msglog.ErrInvalid):
		return protocol.CodeBadFrame, err.Error()
	case errors.Is(err, msglog.ErrConflict):
		return protocol.CodeUnavailable, "conversation busy: retry"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return protocol.CodeUnavailable, "temporarily unavailable: retry"
	}
	e.log.Error("request failed", "err", err)
	return protocol.CodeInternal, "internal error"
}
