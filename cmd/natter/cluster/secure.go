package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/devpki"
	"github.com/natter-im/natter/jetstream/natsauth"
)

// AuthDirName is the directory under Dir that holds a secure cluster's CA,
// the NATS servers' certificate, the tiers' nkey seeds and the rendered
// nats-server configuration.
const AuthDirName = "auth"

// Files under the auth directory.
const (
	caFile       = "ca.pem"
	natsCertFile = "nats.crt"
	natsKeyFile  = "nats.key"
	natsConfFile = "nats.conf"
)

// devCAValidity is how long the dev CA and the servers' certificate of a
// local cluster are valid.
const devCAValidity = 365 * 24 * time.Hour

// AuthDir is the directory of the CA, certificates, seeds and the NATS
// configuration of a secure cluster; empty when Options.Secure is off.
func (c *Cluster) AuthDir() string {
	if !c.Opts.Secure {
		return ""
	}
	return filepath.Join(c.Opts.Dir, AuthDirName)
}

// CAFile is the PEM CA that signed the NATS servers' certificate; empty
// when Options.Secure is off.
func (c *Cluster) CAFile() string {
	if !c.Opts.Secure {
		return ""
	}
	return filepath.Join(c.AuthDir(), caFile)
}

// SeedFile is tier's nkey seed file; empty when Options.Secure is off.
func (c *Cluster) SeedFile(tier natsauth.Tier) string {
	if !c.Opts.Secure {
		return ""
	}
	return natsauth.SeedFile(c.AuthDir(), tier)
}

// NATSOptions are the nats.go options that connect as tier (over TLS, with
// its nkey); none when Options.Secure is off.
func (c *Cluster) NATSOptions(tier natsauth.Tier) ([]nats.Option, error) {
	if !c.Opts.Secure {
		return nil, nil
	}
	nk, err := nats.NkeyOptionFromSeed(c.SeedFile(tier))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return []nats.Option{nk, nats.RootCAs(c.CAFile())}, nil
}

// tierArgs are the natter flags that connect a process as tier.
func (c *Cluster) tierArgs(tier natsauth.Tier) []string {
	if !c.Opts.Secure {
		return nil
	}
	return []string{"--nats-nkey", c.SeedFile(tier), "--nats-tls-ca", c.CAFile()}
}

// natsArgs are the natter nats flags of a secure cluster's nodes.
func (c *Cluster) natsArgs() []string {
	if !c.Opts.Secure {
		return nil
	}
	return []string{"--config", filepath.Join(c.AuthDir(), natsConfFile)}
}

// prepareAuth makes what a secure cluster needs under AuthDir, keeping
// what exists: a dev CA, a certificate for Host signed by it for the NATS
// nodes, a user nkey per tier, and the nats-server configuration rendered
// by natsauth (TLS required, one user per tier with its permissions).
func (c *Cluster) prepareAuth() error {
	if !c.Opts.Secure {
		return nil
	}
	dir := c.AuthDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: auth: %w", err)
	}
	cert, key := filepath.Join(dir, natsCertFile), filepath.Join(dir, natsKeyFile)
	if _, err := os.Stat(cert); errors.Is(err, fs.ErrNotExist) {
		ca, err := devpki.NewCA("natter cluster dev CA", devCAValidity)
		if err != nil {
			return err
		}
		pair, err := ca.Issue([]string{Host, "localhost"}, devCAValidity)
		if err != nil {
			return err
		}
		if err := devpki.WriteFile(c.CAFile(), ca.CertPEM, 0o644); err != nil {
			return err
		}
		if err := pair.WriteFiles(cert, key); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("cluster: auth: %w", err)
	}
	pubs, err := natsauth.EnsureKeys(dir)
	if err != nil {
		return err
	}
	conf, err := natsauth.Render(natsauth.ServerConfig{Users: pubs, TLSCert: cert, TLSKey: key})
	if err != nil {
		return err
	}
	return devpki.WriteFile(filepath.Join(dir, natsConfFile), []byte(conf), 0o600)
}
