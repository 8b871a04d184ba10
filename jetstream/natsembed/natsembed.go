package natsembed

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady is returned when the server does not accept connections in time.
var ErrNotReady = errors.New("natsembed: server not ready")

// Config of the embedded server.
type Config struct {
	// Host to listen on. Empty means 127.0.0.1.
	Host string
	// Port for clients. Zero means 4222; -1 picks a free port.
	Port int
	// StoreDir is the JetStream file store directory. Required.
	StoreDir string
	// ServerName names the server. Empty means "natter-dev".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept clients. Zero means 10s.
	ReadyTimeout time.Duration
	// MaxPayload is the largest message the server accepts. Zero means 1 MiB.
	MaxPayload int32
	// SyncInterval is how often JetStream fsyncs. Zero means the server default (2m).
	SyncInterval time.Duration

	// HTTPPort serves the monitoring endpoints (/healthz, /varz, /jsz) on
	// Host. Zero means none.
	HTTPPort int
	// ClusterName names the cluster; empty means "natter". Only used with
	// ClusterPort.
	ClusterName string
	// ClusterPort is where the server listens for routes from the other
	// nodes of its cluster. Zero means no cluster (a single server).
	ClusterPort int
	// Routes are the nats-route://host:port (or nats://) URLs of the
	// cluster's nodes; this node's own URL may be among them.
	Routes []string
	// Log writes the server's own log to stderr (nats-server's format).
	Log bool
	// Base are options read from a nats-server configuration file; the
	// fields above that are set override them. Nil means none.
	Base *server.Options
}

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
}

// Start runs a nats-server with JetStream under cfg.StoreDir and waits until it
// accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("natsembed: store dir: %w", err)
	}
	probe := filepath.Join(cfg.StoreDir, ".natter-write-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("natsembed: store dir %s is not writable: %w", cfg.StoreDir, err)
	}
	_ = os.Remove(probe)
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 4222
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "natter-dev"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 1 << 20
	}
	opts := &server.Options{}
	if cfg.Base != nil {
		opts = cfg.Base.Clone()
	}
	opts.ServerName, opts.Host, opts.Port = cfg.ServerName, cfg.Host, cfg.Port
	opts.JetStream, opts.StoreDir, opts.MaxPayload = true, cfg.StoreDir, cfg.MaxPayload
	if cfg.SyncInterval > 0 {
		opts.SyncInterval = cfg.SyncInterval
	}
	opts.NoSigs = true
	opts.NoLog = !cfg.Log
	if cfg.HTTPPort != 0 {
		opts.HTTPHost, opts.HTTPPort = cfg.Host, cfg.HTTPPort
	}
	if cfg.ClusterPort != 0 {
		opts.Cluster.Name = cfg.ClusterName
		if opts.Cluster.Name == "" {
			opts.Cluster.Name = "natter"
		}
		opts.Cluster.Host, opts.Cluster.Port = cfg.Host, cfg.ClusterPort
		routes, err := parseRoutes(cfg.Routes)
		if err != nil {
			return nil, err
		}
		opts.Routes = routes
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if cfg.Log {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("%w: not accepting clients on %s:%d after %s", ErrNotReady, cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	return &Server{s}, nil
}

func parseRoutes(urls []string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(urls))
	for _, r := range urls {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("natsembed: route %q is not a nats://host:port URL", r)
		}
		out = append(out, u)
	}
	return out, nil
}

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
