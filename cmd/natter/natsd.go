package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/natsembed"
)

// runNATS runs one nats-server node with JetStream in this process: the
// building block of a local cluster (natter cluster up) and of the chaos
// suite, so nothing but the natter binary is needed.
func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter nats", "natter nats [flags]", stdout)
	var (
		conf, name, host, clusterName, routes, store string
		port, httpPort, clusterPort, routePingsOut   int
		syncInterval, lameDuck, routePing            time.Duration
		logs                                         bool
	)
	fs.String(&conf, "config", "NATTER_NATSD_CONFIG", "", "nats-server configuration file; the flags below that are set override it")
	fs.String(&name, "name", "NATTER_NATSD_NAME", "natter-nats", "server name, unique in the cluster (JetStream's Raft peers are named by it)")
	fs.String(&host, "host", "NATTER_NATSD_HOST", "127.0.0.1", "interface of the client, monitoring and cluster listeners")
	fs.Int(&port, "port", "NATTER_NATSD_PORT", 4222, "client port (-1 = any free port)", anyPort)
	fs.Int(&httpPort, "http-port", "NATTER_NATSD_HTTP_PORT", 8222, "monitoring port: /healthz, /varz, /jsz (0 = off, -1 = any free port)", cli.Port().Or("a port 1-65535, 0 for off or -1 for any free port", 0, -1))
	fs.String(&clusterName, "cluster-name", "NATTER_NATSD_CLUSTER_NAME", "natter", "cluster name, the same on every node")
	fs.Int(&clusterPort, "cluster-port", "NATTER_NATSD_CLUSTER_PORT", 0, "port of the routes from the other nodes (0 = a single server, no cluster; -1 = any free port)", cli.Port().Or("a port 1-65535, 0 for a single server or -1 for any free port", 0, -1))
	fs.String(&routes, "routes", "NATTER_NATSD_ROUTES", "", "nats://host:port route URLs of the cluster's nodes, comma-separated (this node's own may be listed)")
	fs.String(&store, "store", "NATTER_NATSD_STORE", "./data/nats", "JetStream store directory")
	fs.Duration(&syncInterval, "sync-interval", "NATTER_SYNC_INTERVAL", 0, "JetStream fsync interval (0 = nats-server default, 2m)", cli.Min[time.Duration](0))
	fs.Duration(&routePing, "route-ping-interval", "NATTER_NATSD_ROUTE_PING_INTERVAL", defaultRoutePing, "ping the other nodes over each route this often (nats-server's default: 2m, at most 30s for routes)", cli.Positive[time.Duration]())
	fs.Int(&routePingsOut, "route-max-pings-out", "NATTER_NATSD_ROUTE_MAX_PINGS_OUT", defaultRoutePingsOut, "close a route whose node left this many pings unanswered (a frozen node: its Raft groups and interest go with it)", cli.Min(1))
	fs.Duration(&lameDuck, "lame-duck", "NATTER_NATSD_LAME_DUCK", 0, "on SIGTERM, move clients to the other nodes over this interval before stopping (0 = stop at once)", cli.Min[time.Duration](0))
	fs.Bool(&logs, "log", "NATTER_NATSD_LOG", true, "write nats-server's log to stderr")
	var gf gcFlags
	gf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := gf.apply(nil); err != nil {
		return err
	}
	cfg := natsembed.Config{
		Host: host, Port: port, StoreDir: store, ServerName: name, SyncInterval: syncInterval,
		HTTPPort: httpPort, ClusterName: clusterName, ClusterPort: clusterPort, Routes: cli.SplitList(routes),
		Log: logs, ReadyTimeout: 30 * time.Second,
	}
	if conf != "" {
		base, err := server.ProcessConfigFile(conf)
		if err != nil {
			return &node.SettingError{Setting: "--config (NATTER_NATSD_CONFIG)", Err: err}
		}
		cfg.Base = base
		// The file's values stand unless a flag or variable sets them.
		if !fs.IsSet("name") && base.ServerName != "" {
			cfg.ServerName = base.ServerName
		}
		if !fs.IsSet("host") && base.Host != "" {
			cfg.Host = base.Host
		}
		if !fs.IsSet("port") && base.Port != 0 {
			cfg.Port = base.Port
		}
		if !fs.IsSet("store") && base.StoreDir != "" {
			cfg.StoreDir = base.StoreDir
		}
		if !fs.IsSet("http-port") {
			cfg.HTTPPort = 0 // keep the file's http listener
		}
		if !fs.IsSet("cluster-port") {
			cfg.ClusterPort = 0 // keep the file's cluster block
		}
		if base.MaxPayload > 0 {
			cfg.MaxPayload = base.MaxPayload
		}
	}
	if routePing <= 0 {
		return &node.SettingError{Setting: "--route-ping-interval (NATTER_NATSD_ROUTE_PING_INTERVAL)", Err: fmt.Errorf("%v: must be above 0", routePing)}
	}
	if routePingsOut < 1 {
		return &node.SettingError{Setting: "--route-max-pings-out (NATTER_NATSD_ROUTE_MAX_PINGS_OUT)", Err: fmt.Errorf("%d: must be at least 1", routePingsOut)}
	}
	if cfg.Base == nil {
		cfg.Base = &server.Options{}
	}
	// The file's cluster ping settings stand unless a flag or variable sets
	// them.
	if fs.IsSet("route-ping-interval") || cfg.Base.Cluster.PingInterval == 0 {
		cfg.Base.Cluster.PingInterval = routePing
	}
	if fs.IsSet("route-max-pings-out") || cfg.Base.Cluster.MaxPingsOut == 0 {
		cfg.Base.Cluster.MaxPingsOut = routePingsOut
	}
	if lameDuck > 0 {
		cfg.Base.LameDuckDuration = lameDuck
		cfg.Base.LameDuckGracePeriod = lameDuck / 3
	}
	for _, r := range cfg.Routes {
		if u, err := url.Parse(r); err != nil || u.Hostname() == "" || u.Port() == "" {
			return &node.SettingError{Setting: "--routes (NATTER_NATSD_ROUTES)", Err: fmt.Errorf("%q is not a nats://host:port URL", r)}
		}
	}
	if cfg.ClusterPort != 0 && len(cfg.Routes) == 0 {
		return &node.SettingError{Setting: "--routes (NATTER_NATSD_ROUTES)", Err: errors.New("a clustered node needs the route URLs of the other nodes")}
	}
	for _, l := range []struct {
		setting string
		port    int
	}{{"--port (NATTER_NATSD_PORT)", cfg.Port}, {"--http-port (NATTER_NATSD_HTTP_PORT)", cfg.HTTPPort}, {"--cluster-port (NATTER_NATSD_CLUSTER_PORT)", cfg.ClusterPort}} {
		if l.port <= 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(l.port)))
		if err != nil {
			return &node.SettingError{Setting: l.setting, Err: err}
		}
		_ = ln.Close()
	}
	// Signals are caught before the ready line, so a stop right after it
	// is a graceful one.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	s, err := natsembed.Start(cfg)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	mon := ""
	if a := s.MonitorAddr(); a != nil {
		mon = a.String()
	}
	cluster := ""
	if a := s.ClusterAddr(); a != nil {
		cluster = a.String()
	}
	fmt.Fprintf(stderr, "time=%s level=INFO msg=\"natter ready\" mode=nats name=%s nats=%s http=%s cluster=%s store=%s\n",
		time.Now().Format(time.RFC3339), s.Name(), s.ClientURL(), mon, cluster, cfg.StoreDir)

	select {
	case <-ctx.Done():
	case <-sig:
	}
	done := make(chan struct{})
	go func() {
		if lameDuck > 0 {
			s.LameDuckShutdown()
		}
		s.Stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-sig:
		return errors.New("nats: second signal: forcing exit")
	}
}

// A node that stops answering without closing its routes (a frozen process,
// a half-open connection) is cut off by the others when a route ping is
// due while defaultRoutePingsOut are unanswered, defaultRoutePing apart:
// 2-3 s after it froze, where nats-server's defaults (every 30 s for routes, 2
// outstanding) keep routing requests and interest to it for a minute or
// more. infra/nats/cluster/n*.conf set the same values.
const (
	defaultRoutePing     = time.Second
	defaultRoutePingsOut = 2
)
