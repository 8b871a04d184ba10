package testenv

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/natsembed"
)

// NATSOption changes the configuration StartNATS starts its server with.
type NATSOption func(*natsembed.Config)

// WithStoreDir puts the JetStream store under dir instead of a fresh
// tb.TempDir(): a server started again on the same dir finds its streams.
func WithStoreDir(dir string) NATSOption {
	return func(c *natsembed.Config) { c.StoreDir = dir }
}

// WithPort listens on port instead of a free one (a restart on the port
// the clients know).
func WithPort(port int) NATSOption {
	return func(c *natsembed.Config) { c.Port = port }
}

// WithMaxPayload sets the largest message the server accepts. Zero keeps
// natsembed's default (1 MiB).
func WithMaxPayload(n int32) NATSOption {
	return func(c *natsembed.Config) { c.MaxPayload = n }
}

// StartNATS starts an embedded nats-server with JetStream on 127.0.0.1, on
// a free port (Port -1), its store under tb.TempDir(), after opts have
// changed that configuration. It returns once the server accepts clients
// and shuts it down, waiting for it, when tb ends; stopping it earlier is
// fine.
func StartNATS(tb testing.TB, opts ...NATSOption) *natsembed.Server {
	tb.Helper()
	cfg := natsembed.Config{Port: -1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = tb.TempDir()
	}
	s, err := natsembed.Start(cfg)
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Connect opens a connection of its own to url, as a separate process
// would, and closes it when tb ends.
func Connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns the JetStream context of nc.
func JetStream(tb testing.TB, nc *nats.Conn) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// StartJetStream is StartNATS plus a connection to the server and its
// JetStream context, all ended when tb ends.
func StartJetStream(tb testing.TB, opts ...NATSOption) (*natsembed.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	s := StartNATS(tb, opts...)
	nc := Connect(tb, s.ClientURL())
	return s, nc, JetStream(tb, nc)
}
