package auth_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/auth"
)

func TestMintVerify(t *testing.T) {
	t.Parallel()
	f := fixtures()
	v := testVerifier(t)
	tests := []struct {
		name string
		key  auth.Key
		priv crypto.PrivateKey
		c    auth.MintClaims
		want time.Duration // expected lifetime
	}{
		{"HS256 default TTL", f.hs, nil, auth.MintClaims{User: "alice", Issuer: testIssuer, Audience: testAudience}, auth.DefaultTTL},
		{"RS256 with device", f.rsa2, f.rsa2Priv, auth.MintClaims{User: "bob", Device: "web-1", Issuer: testIssuer, Audience: testAudience, TTL: time.Minute}, time.Minute},
		{"EdDSA with nbf", f.ed, f.edPriv, auth.MintClaims{User: "carol", Issuer: testIssuer, Audience: testAudience, NotBefore: time.Now().Add(-time.Minute)}, auth.DefaultTTL},
		{"EdDSA, public half derived", auth.Key{ID: "ed", Alg: auth.AlgEdDSA}, f.edPriv, auth.MintClaims{User: "dave", Issuer: testIssuer, Audience: testAudience}, auth.DefaultTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now().Truncate(time.Second)
			tok, err := auth.Mint(tt.key, tt.priv, tt.c)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.User != tt.c.User || c.Device != tt.c.Device {
				t.Errorf("claims = %+v, want user %q device %q", c, tt.c.User, tt.c.Device)
			}
			if lo, hi := start.Add(tt.want), time.Now().Add(tt.want); c.ExpiresAt.Before(lo) || c.ExpiresAt.After(hi) {
				t.Errorf("ExpiresAt = %v, want in [%v, %v]", c.ExpiresAt, lo, hi)
			}
		})
	}
}

func TestMintNotBeforeInFuture(t *testing.T) {
	t.Parallel()
	f := fixtures()
	tok, err := auth.Mint(f.hs, nil, auth.MintClaims{User: "alice", NotBefore: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, auth.Config{Keys: []auth.Key{f.hs}})
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrNotYetValid) {
		t.Fatalf("Verify error = %v, want ErrNotYetValid", err)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	f := fixtures()
	ok := auth.MintClaims{User: "alice"}
	tests := []struct {
		name string
		key  auth.Key
		priv crypto.PrivateKey
		c    auth.MintClaims
		msg  string
	}{
		{"bad user", f.hs, nil, auth.MintClaims{User: "a.b"}, "user"},
		{"no user", f.hs, nil, auth.MintClaims{}, "user"},
		{"bad device", f.hs, nil, auth.MintClaims{User: "alice", Device: "x y"}, "device"},
		{"negative TTL", f.hs, nil, auth.MintClaims{User: "alice", TTL: -time.Second}, "negative TTL"},
		{"short secret", auth.Key{ID: "hs", Alg: auth.AlgHS256, Secret: []byte("short")}, nil, ok, "at least 32"},
		{"HS256 with priv", f.hs, f.edPriv, ok, "priv must be nil"},
		{"RS256 without priv", f.rsa1, nil, ok, "*rsa.PrivateKey"},
		{"RS256 with Ed25519 priv", f.rsa1, f.edPriv, ok, "*rsa.PrivateKey"},
		{"RS256 with other RSA priv", f.rsa1, f.rsa2Priv, ok, "does not match"},
		{"EdDSA with RSA priv", f.ed, f.rsa1Priv, ok, "ed25519.PrivateKey"},
		{"EdDSA with other Ed25519 priv", f.ed, func() crypto.PrivateKey { _, p := newEdKey("x"); return p }(), ok, "does not match"},
		{"unsupported alg", auth.Key{ID: "k", Alg: "none"}, nil, ok, "unsupported alg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := auth.Mint(tt.key, tt.priv, tt.c)
			if err == nil {
				t.Fatalf("Mint = %q, want error containing %q", tok, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "auth: mint: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Mint error = %q, want \"auth: mint: ...%s...\"", err, tt.msg)
			}
		})
	}
}

func TestLoadKeyFile(t *testing.T) {
	t.Parallel()
	f := fixtures()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&f.rsa1Priv.PublicKey)})
	tests := []struct {
		name, alg string
		data      []byte
		priv      crypto.PrivateKey // signs a token the loaded key must accept
		err       string            // "" = success
	}{
		{"HS256 trimmed", auth.AlgHS256, append(append([]byte(nil), f.hs.Secret...), " \n"...), nil, ""},
		{"RS256 PKIX", auth.AlgRS256, publicPEM(t, f.rsa1.Public), f.rsa1Priv, ""},
		{"RS256 PKCS1", auth.AlgRS256, pkcs1, f.rsa1Priv, ""},
		{"EdDSA PKIX", auth.AlgEdDSA, publicPEM(t, f.ed.Public), f.edPriv, ""},
		{"HS256 short", auth.AlgHS256, []byte("short\n"), nil, "at least 32"},
		{"RS256 given Ed25519 PEM", auth.AlgRS256, publicPEM(t, f.ed.Public), nil, "*rsa.PublicKey"},
		{"EdDSA given RSA PEM", auth.AlgEdDSA, publicPEM(t, f.rsa1.Public), nil, "ed25519.PublicKey"},
		{"not PEM", auth.AlgRS256, []byte("hello"), nil, "no PEM block"},
		{"private key PEM", auth.AlgEdDSA, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), nil, "not a public key"},
		{"unsupported alg", "HS512", f.hs.Secret, nil, "unsupported alg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := auth.LoadKeyFile("k1", tt.alg, writeFile(t, "key", tt.data))
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "auth: ") || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadKeyFile error = %v, want \"auth: ...%s...\"", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeyFile: %v", err)
			}
			tok, err := auth.Mint(k, tt.priv, auth.MintClaims{User: "alice"})
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			if _, err := newVerifier(t, auth.Config{Keys: []auth.Key{k}}).Verify(tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
	if _, err := auth.LoadKeyFile("k1", auth.AlgHS256, "/nonexistent/key"); err == nil {
		t.Error("LoadKeyFile of a missing file: no error")
	}
}
