package main

import (
	"context"
	"fmt"
	"io"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/natsauth"
)

// runNATSAuth implements "natter nats-auth": the tiers' user nkeys (made
// in --dir if missing) and the nats-server configuration that gives each
// its permissions (jetstream/natsauth), for an operator's own servers.
func runNATSAuth(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter nats-auth", "natter nats-auth --dir DIR [flags] > auth.conf", stdout)
	var dir, cert, key, ca string
	fs.String(&dir, "dir", "NATTER_NATS_AUTH_DIR", "", "directory of the tiers' nkey seeds (<tier>.nk, mode 0600): kept when present, made when missing (required)")
	fs.String(&cert, "tls-cert", "NATTER_NATS_AUTH_TLS_CERT", "", "the servers' PEM certificate: the configuration then requires TLS of every client (give --tls-key too)")
	fs.String(&key, "tls-key", "NATTER_NATS_AUTH_TLS_KEY", "", "the servers' PEM key")
	fs.String(&ca, "tls-ca", "NATTER_NATS_AUTH_TLS_CA", "", "CA the servers verify client certificates with (mutual TLS); empty = the nkey is the client's only credential")
	if err := parse(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return usageError{fmt.Errorf("--dir (NATTER_NATS_AUTH_DIR): required")}
	}
	pubs, err := natsauth.EnsureKeys(dir)
	if err != nil {
		return &node.SettingError{Setting: "--dir (NATTER_NATS_AUTH_DIR)", Err: err}
	}
	conf, err := natsauth.Render(natsauth.ServerConfig{Users: pubs, TLSCert: cert, TLSKey: key, TLSCA: ca})
	if err != nil {
		return &node.SettingError{Setting: "--tls-cert, --tls-key (NATTER_NATS_AUTH_TLS_CERT, NATTER_NATS_AUTH_TLS_KEY)", Err: err}
	}
	fmt.Fprint(stdout, conf)
	for _, t := range natsauth.Tiers {
		fmt.Fprintf(stderr, "%-8s %s  seed %s\n", t, pubs[t], natsauth.SeedFile(dir, t))
	}
	return nil
}
