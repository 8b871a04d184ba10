package main

import (
	"time"

	"github.com/natter-im/natter/internal/certreload"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
)

// tlsFlags serve the edge's listener over TLS (natter dev, natter edge).
type tlsFlags struct {
	cert, key string
	reload    time.Duration
}

func (t *tlsFlags) register(fs *cli.FlagSet) {
	fs.String(&t.cert, "tls-cert", "NATTER_TLS_CERT", "", "PEM certificate chain (leaf first) the edge serves TLS with; empty = plain HTTP (give --tls-key too)")
	fs.String(&t.key, "tls-key", "NATTER_TLS_KEY", "", "PEM private key of --tls-cert")
	fs.Duration(&t.reload, "tls-reload-interval", "NATTER_TLS_RELOAD_INTERVAL", certreload.DefaultInterval, "how often the certificate and key files are checked; a changed pair serves new connections, the ones up keep theirs", cli.Between(100*time.Millisecond, time.Hour))
}

func (t *tlsFlags) apply(cfg *node.Config) {
	cfg.EdgeTLS = node.EdgeTLS{CertFile: t.cert, KeyFile: t.key, ReloadInterval: t.reload}
}
