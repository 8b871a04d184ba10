package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/workers/fanout"
	"github.com/natter-im/natter/workers/webhooks"
)

// commonFlags are shared by dev, edge, worker and streams apply.
type commonFlags struct {
	data, natsURL, natsCreds, natsCA, natsCert, natsKey string
	natsNkey                                            string
	mongoURI, mongoDB, mongoReadPref                    string
	natsPort                                            int
	syncInterval                                        time.Duration
	replicas, maxDeliver                                int
	hotTier                                             int
	dedup, idemTTL, ackWait, eventsMaxAge, eventsDedup  time.Duration
	summariesMaxAge                                     time.Duration
	logLevel, logFormat                                 string
	mongoSecret                                         secretFlags // --mongo-uri(-file)
}

func (c *commonFlags) register(fs *cli.FlagSet, mode node.Mode) {
	if mode == node.ModeDev {
		fs.String(&c.data, "data", "NATTER_DATA", "./data", "directory of the embedded NATS and store files and the dev signing key")
		fs.Int(&c.natsPort, "nats-port", "NATTER_NATS_PORT", 4222, "client port of the embedded nats-server (-1 = any free port)", anyPort)
		fs.Duration(&c.syncInterval, "sync-interval", "NATTER_SYNC_INTERVAL", 0, "embedded JetStream fsync interval (0 = nats-server default, 2m)", cli.Min[time.Duration](0))
	}
	c.registerConn(fs, "", "external NATS URL(s), comma-separated; empty in dev = embedded server")
	if mode != node.ModeEdge {
		c.mongoSecret.register(fs, "mongo-uri", "NATTER_MONGO_URI", "the MongoDB URI with credentials and TLS options (empty in dev = embedded FerretDB)")
		fs.String(&c.mongoDB, "mongo-db", "NATTER_MONGO_DB", "natter", "MongoDB database")
		fs.String(&c.mongoReadPref, "mongo-read-preference", "NATTER_MONGO_READ_PREFERENCE", "secondaryPreferred", "read preference of archived history reads")
	}
	fs.Int(&c.replicas, "replicas", "NATTER_REPLICAS", 1, "replicas of every stream and KV bucket (3 on a cluster)", cli.Between(1, 5))
	fs.Int(&c.hotTier, "hot-tier", "NATTER_HOT_TIER", 10_000, "newest messages per conversation kept in JetStream", cli.Min(1))
	fs.Duration(&c.dedup, "dedup-window", "NATTER_DEDUP_WINDOW", streams.DefaultDedupWindow, "JetStream duplicate window of the message log", cli.Positive[time.Duration]())
	fs.Duration(&c.idemTTL, "idem-ttl", "NATTER_IDEM_TTL", 24*time.Hour, "ignored (kept so that existing command lines start): a retry is answered from the log or the archive for as long as they hold its message", cli.Positive[time.Duration]())
	fs.Int(&c.maxDeliver, "max-deliver", "NATTER_MAX_DELIVER", 10, "deliveries of a message to a worker before it is dead-lettered", cli.Min(1))
	fs.Duration(&c.ackWait, "ack-wait", "NATTER_ACK_WAIT", 30*time.Second, "worker ack wait before redelivery", cli.Positive[time.Duration]())
	fs.Duration(&c.summariesMaxAge, "summaries-max-age", "NATTER_SUMMARIES_MAX_AGE", 6*time.Hour, "how long the SUMMARIES bucket keeps a conversation's summary after a conv.list page wrote it", cli.Positive[time.Duration]())
	fs.Duration(&c.eventsMaxAge, "events-max-age", "NATTER_EVENTS_MAX_AGE", 7*24*time.Hour, "how long the EVENTS stream keeps an event (how far back consumers can replay)", cli.Positive[time.Duration]())
	fs.Duration(&c.eventsDedup, "events-dedup-window", "NATTER_EVENTS_DEDUP_WINDOW", streams.DefaultEventsDedupWindow, "duplicate window of the EVENTS stream: an event re-published within it is stored once", cli.Positive[time.Duration]())
	fs.String(&c.logLevel, "log-level", "NATTER_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.String(&c.logFormat, "log-format", "NATTER_LOG_FORMAT", "text", "text or json")
}

// registerConn registers the flags of the connection to NATS.
func (c *commonFlags) registerConn(fs *cli.FlagSet, defURL, urlUsage string) {
	fs.String(&c.natsURL, "nats-url", "NATTER_NATS_URL", defURL, urlUsage)
	fs.String(&c.natsCreds, "nats-creds", "NATTER_NATS_CREDS", "", "NATS .creds file")
	fs.String(&c.natsNkey, "nats-nkey", "NATTER_NATS_NKEY", "", "NATS nkey seed file of this process's tier user (not with --nats-creds)")
	fs.String(&c.natsCA, "nats-tls-ca", "NATTER_NATS_TLS_CA", "", "CA file for TLS to NATS")
	fs.String(&c.natsCert, "nats-tls-cert", "NATTER_NATS_TLS_CERT", "", "client certificate for TLS to NATS")
	fs.String(&c.natsKey, "nats-tls-key", "NATTER_NATS_TLS_KEY", "", "client key for TLS to NATS")
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level (NATTER_LOG_LEVEL): %q is not debug, info, warn or error", c.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format (NATTER_LOG_FORMAT): %q is not text or json", c.logFormat)}
}

func (c *commonFlags) apply(cfg *node.Config) {
	cfg.DataDir = c.data
	cfg.NATSURL = c.natsURL
	cfg.NATSCreds, cfg.NATSTLSCA, cfg.NATSTLSCert, cfg.NATSTLSKey = c.natsCreds, c.natsCA, c.natsCert, c.natsKey
	cfg.NATSNkey = c.natsNkey
	cfg.NATSPort = c.natsPort
	cfg.SyncInterval = c.syncInterval
	cfg.MongoURI, cfg.MongoDB, cfg.MongoReadPreference = c.mongoURI, c.mongoDB, c.mongoReadPref
	cfg.Streams.Replicas = c.replicas
	cfg.Streams.HotTier = int64(c.hotTier)
	cfg.Streams.DedupWindow = c.dedup
	cfg.Streams.MaxDeliver = c.maxDeliver
	cfg.Streams.AckWait = c.ackWait
	cfg.Streams.EventsMaxAge = c.eventsMaxAge
	cfg.Streams.SummariesMaxAge = c.summariesMaxAge
	cfg.Streams.EventsDedupWindow = c.eventsDedup
}

func runNode(ctx context.Context, mode node.Mode, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter "+mode.String(), "natter "+mode.String()+" [flags]", stdout)
	var common commonFlags
	common.register(fs, mode)
	var httpAddr, adminAddr, roles, hooks string
	var shutdownTimeout time.Duration
	if mode != node.ModeWorker {
		fs.String(&httpAddr, "http", "NATTER_HTTP_ADDR", "127.0.0.1:8080", "edge listen address: WebSockets, REST, /healthz, /readyz, /metrics")
	}
	if mode == node.ModeWorker {
		fs.String(&adminAddr, "admin", "NATTER_ADMIN_ADDR", "127.0.0.1:9090", "worker admin address: /healthz, /readyz, /metrics")
	}
	var serviceMaxBody int
	broadcastMin := fanout.DefaultBroadcastMin
	var readPush time.Duration
	var pf pushFlags
	if mode != node.ModeEdge {
		pf.register(fs)
		fs.String(&hooks, "webhooks", "NATTER_WEBHOOKS", "", "JSON file of webhook endpoints ({\"endpoints\":[{\"name\",\"url\",\"secret\",\"kinds\"}]}); empty = no webhooks")
		fs.String(&roles, "roles", "NATTER_ROLES", strings.Join(node.AllRoles, ","), "worker roles to run")
		fs.Int(&serviceMaxBody, "service-max-body", "NATTER_SERVICE_MAX_BODY", 0, "largest message body of the service API and ingest roles in bytes (0 = --max-body in dev, 65536 otherwise)", cli.Min(0))
		fs.Duration(&readPush, "read-push-interval", "NATTER_READ_PUSH_INTERVAL", 250*time.Millisecond, "the conversations service pushes at most one read (the highest) per user and conversation per interval (0 = every read that moves a cursor)", cli.Between(0, time.Minute))
		fs.Int(&broadcastMin, "fanout-broadcast-min", "NATTER_FANOUT_BROADCAST_MIN", fanout.DefaultBroadcastMin, "members from which the fan-out role sends a conversation's batch once to every edge instead of once per member (0 = never)", cli.Min(0))
	}
	var pprofOn bool
	fs.Bool(&pprofOn, "pprof", "NATTER_PPROF", mode == node.ModeDev, "serve Go runtime profiles under /debug/pprof/ on the listener of /metrics (on by default only in dev)")
	fs.Duration(&shutdownTimeout, "shutdown-timeout", "NATTER_SHUTDOWN_TIMEOUT", 30*time.Second, "bound of a graceful shutdown", cli.Positive[time.Duration]())
	var trf tracingFlags
	trf.register(fs)
	var gf gcFlags
	gf.register(fs)
	var ef edgeFlags
	var tf tlsFlags
	if mode != node.ModeWorker {
		ef.register(fs, mode)
		tf.register(fs)
	}
	var af attachFlags
	af.register(fs, mode)
	var rf retentionFlags
	if mode != node.ModeEdge {
		rf.register(fs)
	}
	var adminTok secretFlags
	adminTok.register(fs, "admin-token", "NATTER_ADMIN_TOKEN", "the admin API's credential (at least 32 bytes; empty = admin API off)")
	tokenLifetime := revoke.DefaultTokenLifetime
	fs.Duration(&tokenLifetime, "max-token-lifetime", "NATTER_MAX_TOKEN_LIFETIME", revoke.DefaultTokenLifetime, "longest lifetime (exp - iat) of the user tokens your identity provider issues: how long a revocation by user or device is kept", cli.Positive[time.Duration]())
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := common.logger(stderr)
	if err != nil {
		return err
	}
	if err := gf.apply(log); err != nil {
		return err
	}
	if common.mongoURI, err = common.mongoSecret.get(); err != nil {
		return err
	}
	cfg := node.Config{Mode: mode, Version: version, HTTPAddr: httpAddr, AdminAddr: adminAddr,
		Roles: cli.SplitList(roles), ServiceMaxBody: serviceMaxBody, ShutdownTimeout: shutdownTimeout, Pprof: pprofOn, Logger: log}
	if cfg.Admin.Token, err = adminTok.get(); err != nil {
		return err
	}
	cfg.Admin.TokenLifetime = tokenLifetime
	common.apply(&cfg)
	if cfg.FanoutBroadcastMin = broadcastMin; broadcastMin == 0 {
		cfg.FanoutBroadcastMin = -1 // never; zero would mean the default
	}
	if cfg.ReadPushInterval = readPush; readPush == 0 {
		cfg.ReadPushInterval = -1 // no coalescing; zero would mean the default
	}
	if cfg.Faults, err = faultsFromEnv(); err != nil {
		return err
	}
	if mode != node.ModeEdge {
		if err := pf.apply(&cfg); err != nil {
			return err
		}
		rf.apply(&cfg)
	}
	if hooks != "" {
		eps, err := webhooks.LoadEndpoints(hooks)
		if err != nil {
			return &node.SettingError{Setting: node.SettingWebhooks, Err: err}
		}
		cfg.Webhooks = eps
	}
	if mode != node.ModeWorker {
		if err := ef.apply(&cfg); err != nil {
			return err
		}
		tf.apply(&cfg)
	}
	if err := af.apply(&cfg, mode); err != nil {
		return err
	}

	stopTracing, err := trf.setup(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer func() { // after the node's shutdown: flush the last spans
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}()
	ctx, stop := signals(ctx, stderr)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	var served error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", shutdownTimeout)
	case served = <-n.Done():
		log.Error("http server stopped", "err", served)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		return err
	}
	if served != nil {
		return fmt.Errorf("http server: %w", served)
	}
	return nil
}
