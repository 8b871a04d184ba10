package auth

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Algorithms a [Key] can pin.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// Key limits, checked by [New], [Mint] and [LoadKeyFile].
const (
	// MinSecretLen is the shortest HS256 secret accepted, in bytes: the
	// size of the SHA-256 output, as RFC 7518 section 3.2 requires.
	MinSecretLen = 32
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// Defaults applied by [New] to zero [Config] fields.
const (
	DefaultJWKSRefresh = 5 * time.Minute
	DefaultLeeway      = 30 * time.Second
	// DefaultHTTPTimeout is the timeout of the HTTP client used for
	// Config.JWKSURL when Config.HTTPClient is nil.
	DefaultHTTPTimeout = 10 * time.Second
)

// Key is one verification key. Its algorithm is pinned: a token is accepted
// by this key only if its "alg" header equals Alg.
type Key struct {
	// ID is the key id ("kid") tokens name in their header. Required, and
	// unique across Config.Keys and the JWKS keys.
	ID string
	// Alg is AlgHS256, AlgRS256 or AlgEdDSA.
	Alg string
	// Secret is the HMAC secret of an HS256 key, at least MinSecretLen
	// bytes. Empty for the other algorithms.
	Secret []byte
	// Public is the public key: *rsa.PublicKey (at least MinRSABits) for
	// RS256, ed25519.PublicKey for EdDSA, nil for HS256.
	Public crypto.PublicKey
}

// Config configures a [Verifier]. At least one key must come from Keys,
// JWKSFile or JWKSURL.
type Config struct {
	// Keys are static verification keys. Zero value means none.
	Keys []Key
	// JWKSFile is the path of a JWK Set (RFC 7517) read once by New.
	// Empty means none.
	JWKSFile string
	// JWKSURL is the http(s) URL of a JWK Set, fetched by New and refreshed
	// every JWKSRefresh until New's context is done. A failed refresh keeps
	// the previous keys. Empty means none.
	JWKSURL string
	// JWKSRefresh is the interval between fetches of JWKSURL. Zero value
	// means DefaultJWKSRefresh (5m).
	JWKSRefresh time.Duration
	// Issuer, when set, must equal the token's "iss". Empty means iss is not
	// checked.
	Issuer string
	// Audience, when set, must be one of the token's "aud". Empty means aud
	// is not checked.
	Audience string
	// Leeway is the clock skew allowed on exp and nbf. Zero value means
	// DefaultLeeway (30s).
	Leeway time.Duration
	// HTTPClient fetches JWKSURL. Nil means a client with a
	// DefaultHTTPTimeout (10s) timeout.
	HTTPClient *http.Client
	// Logger receives JWKS refresh failures. Nil means no logging.
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// check validates k and returns a normalised copy (pointer/value forms of
// public keys unified, secret copied).
func (k Key) check() (Key, error) {
	if k.ID == "" {
		return Key{}, errors.New("key has no id")
	}
	switch k.Alg {
	case AlgHS256:
		if len(k.Secret) < MinSecretLen {
			return Key{}, fmt.Errorf("key %q: HS256 secret is %d bytes, want at least %d", k.ID, len(k.Secret), MinSecretLen)
		}
		if k.Public != nil {
			return Key{}, fmt.Errorf("key %q: HS256 key has a public key", k.ID)
		}
		k.Secret = bytes.Clone(k.Secret)
	case AlgRS256:
		var pub *rsa.PublicKey
		switch p := k.Public.(type) {
		case *rsa.PublicKey:
			pub = p
		case rsa.PublicKey:
			pub = &p
		default:
			return Key{}, fmt.Errorf("key %q: RS256 needs an *rsa.PublicKey, got %T", k.ID, k.Public)
		}
		if pub == nil || pub.N == nil || pub.N.BitLen() < MinRSABits {
			return Key{}, fmt.Errorf("key %q: RSA key shorter than %d bits", k.ID, MinRSABits)
		}
		if len(k.Secret) > 0 {
			return Key{}, fmt.Errorf("key %q: RS256 key has a secret", k.ID)
		}
		k.Public = pub
	case AlgEdDSA:
		var pub ed25519.PublicKey
		switch p := k.Public.(type) {
		case ed25519.PublicKey:
			pub = p
		case *ed25519.PublicKey:
			if p != nil {
				pub = *p
			}
		default:
			return Key{}, fmt.Errorf("key %q: EdDSA needs an ed25519.PublicKey, got %T", k.ID, k.Public)
		}
		if len(pub) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("key %q: Ed25519 public key is %d bytes, want %d", k.ID, len(pub), ed25519.PublicKeySize)
		}
		if len(k.Secret) > 0 {
			return Key{}, fmt.Errorf("key %q: EdDSA key has a secret", k.ID)
		}
		k.Public = pub
	default:
		return Key{}, fmt.Errorf("key %q: unsupported alg %q (want %s, %s or %s)", k.ID, k.Alg, AlgHS256, AlgRS256, AlgEdDSA)
	}
	return k, nil
}

// verifyKey is the key material the jwt signing method verifies with.
func (k Key) verifyKey() any {
	if k.Alg == AlgHS256 {
		return k.Secret
	}
	return k.Public
}

// LoadKeyFile reads the verification key id from path. For AlgRS256 and
// AlgEdDSA the file holds a PEM "PUBLIC KEY" (PKIX; "RSA PUBLIC KEY",
// PKCS #1, is accepted for RSA) whose type must fit alg. For AlgHS256 the
// file's bytes, with surrounding white space trimmed, are the secret.
func LoadKeyFile(id, alg, path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("auth: load key: %w", err)
	}
	k := Key{ID: id, Alg: alg}
	switch alg {
	case AlgHS256:
		k.Secret = bytes.TrimSpace(data)
	case AlgRS256, AlgEdDSA:
		if k.Public, err = parsePublicPEM(data); err != nil {
			return Key{}, fmt.Errorf("auth: load key %s: %w", path, err)
		}
	}
	if k, err = k.check(); err != nil {
		return Key{}, fmt.Errorf("auth: load key %s: %w", path, err)
	}
	return k, nil
}

// parsePublicPEM decodes the first PEM block of data as a public key.
func parsePublicPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
}
