package natsauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Account is the NATS account that holds natter's streams and every tier's
// user.
const Account = "NATTER"

// ErrConfig reports an unusable [ServerConfig].
var ErrConfig = errors.New("natsauth: bad server config")

// ServerConfig is what [Render] writes.
type ServerConfig struct {
	// Users are the public nkeys (U...) by tier; every tier of Tiers needs
	// one.
	Users map[Tier]string
	// TLSCert and TLSKey are the server's PEM certificate and key: clients
	// must connect over TLS. Empty means no TLS (loopback tests only).
	TLSCert, TLSKey string
	// TLSCA, when set, is the CA file the server verifies client
	// certificates with (mutual TLS, required of every client). Empty
	// means clients show no certificate (the nkey is their credential).
	TLSCA string
}

// Render writes a nats-server configuration fragment: the tls block and
// the NATTER account with JetStream and one nkey user per tier with its
// permissions. It names no listener, store or cluster: `natter nats
// --config` takes those from its flags.
func Render(c ServerConfig) (string, error) {
	var b strings.Builder
	b.WriteString("# natter: per-tier NATS users and TLS, rendered by jetstream/natsauth.\n")
	if c.TLSCert != "" || c.TLSKey != "" {
		if c.TLSCert == "" || c.TLSKey == "" {
			return "", fmt.Errorf("%w: TLS needs both a certificate and a key", ErrConfig)
		}
		b.WriteString("tls {\n")
		fmt.Fprintf(&b, "  cert_file: %s\n  key_file: %s\n", strconv.Quote(c.TLSCert), strconv.Quote(c.TLSKey))
		if c.TLSCA != "" {
			fmt.Fprintf(&b, "  ca_file: %s\n  verify: true\n", strconv.Quote(c.TLSCA))
		}
		b.WriteString("  timeout: 5\n}\n")
	}
	fmt.Fprintf(&b, "accounts {\n  %s {\n    jetstream: enabled\n    users: [\n", Account)
	for _, t := range Tiers {
		pub := c.Users[t]
		if !nkeys.IsValidPublicUserKey(pub) {
			return "", fmt.Errorf("%w: tier %s: %q is not a public user nkey", ErrConfig, t, pub)
		}
		fmt.Fprintf(&b, "      { nkey: %s", pub)
		if p := For(t); !p.All {
			b.WriteString(", permissions: ")
			p.render(&b, "        ")
		}
		b.WriteString(" }\n")
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String(), nil
}

func (p Permissions) render(b *strings.Builder, indent string) {
	list := func(name string, subs []string) {
		fmt.Fprintf(b, "%s  %s: { allow: [\n", indent, name)
		for _, s := range subs {
			fmt.Fprintf(b, "%s    %s\n", indent, strconv.Quote(s))
		}
		fmt.Fprintf(b, "%s  ] }\n", indent)
	}
	b.WriteString("{\n")
	list("publish", p.Publish)
	list("subscribe", p.Subscribe)
	if p.AllowResponses {
		fmt.Fprintf(b, "%s  allow_responses: { max: %d }\n", indent, ResponsesMax)
	}
	b.WriteString(indent + "}")
}

// Server is p as nats-server's permissions; nil for All.
func (p Permissions) Server() *server.Permissions {
	if p.All {
		return nil
	}
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string(nil), p.Publish...)},
		Subscribe: &server.SubjectPermission{Allow: append([]string(nil), p.Subscribe...)},
	}
	if p.AllowResponses {
		sp.Response = &server.ResponsePermission{MaxMsgs: ResponsesMax, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return sp
}

// SeedFile is the file name of tier's nkey seed in a keys directory.
func SeedFile(dir string, t Tier) string { return filepath.Join(dir, string(t)+".nk") }

// EnsureKeys makes a user nkey per tier in dir (file <tier>.nk holding the
// seed, mode 0600) unless the file exists, and returns every tier's public
// key. A file that holds no user seed is an error.
func EnsureKeys(dir string) (map[Tier]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("natsauth: keys: %w", err)
	}
	pubs := make(map[Tier]string, len(Tiers))
	for _, t := range Tiers {
		path := SeedFile(dir, t)
		seed, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			kp, err := nkeys.CreateUser()
			if err != nil {
				return nil, fmt.Errorf("natsauth: %s key: %w", t, err)
			}
			if seed, err = kp.Seed(); err != nil {
				return nil, fmt.Errorf("natsauth: %s key: %w", t, err)
			}
			if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
				return nil, fmt.Errorf("natsauth: %s key: %w", t, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("natsauth: %s key: %w", t, err)
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			return nil, fmt.Errorf("natsauth: %s: %w", path, err)
		}
		pub, err := kp.PublicKey()
		if err != nil || !nkeys.IsValidPublicUserKey(pub) {
			return nil, fmt.Errorf("natsauth: %s: not a user seed", path)
		}
		pubs[t] = pub
	}
	return pubs, nil
}
