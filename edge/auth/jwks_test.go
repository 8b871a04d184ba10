package auth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/internal/testenv"
)

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestJWKSFile(t *testing.T) {
	t.Parallel()
	f := fixtures()
	doc := jwks(t,
		jwkRSA("rsa1", "RS256", f.rsa1.Public.(*rsaPub)),
		jwkRSA("rsa2", "", f.rsa2.Public.(*rsaPub)), // no alg: RS256 from kty
		jwkOKP("ed", "", f.ed.Public.(edPub)),       // no alg: EdDSA from kty
		// Skipped: an encryption key, an EC key, an RS512 key.
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
		jwkRSA("rs512", "RS512", f.rsa1.Public.(*rsaPub)),
	)
	v := newVerifier(t, auth.Config{JWKSFile: writeFile(t, "jwks.json", doc)})
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"RSA with alg", sign(t, jwt.SigningMethodRS256, "rsa1", f.rsa1Priv, claims()), nil},
		{"RSA without alg", sign(t, jwt.SigningMethodRS256, "rsa2", f.rsa2Priv, claims()), nil},
		{"OKP without alg", sign(t, jwt.SigningMethodEdDSA, "ed", f.edPriv, claims()), nil},
		{"OKP key, wrong alg", sign(t, jwt.SigningMethodRS256, "ed", f.rsa1Priv, claims()), auth.ErrAlgMismatch},
		{"skipped enc key", sign(t, jwt.SigningMethodRS256, "enc", f.rsa1Priv, claims()), auth.ErrUnknownKey},
		{"skipped RS512 key", sign(t, jwt.SigningMethodRS256, "rs512", f.rsa1Priv, claims()), auth.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

// jwksServer serves the JWK Set in doc, or a 500 while failing is set.
type jwksServer struct {
	*httptest.Server
	doc      atomic.Pointer[[]byte]
	failing  atomic.Bool
	requests atomic.Int64
}

func newJWKSServer(tb testing.TB, doc []byte) *jwksServer {
	s := &jwksServer{}
	s.doc.Store(&doc)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.doc.Load())
	}))
	tb.Cleanup(s.Close)
	return s
}

func TestJWKSURLRotation(t *testing.T) {
	t.Parallel()
	oldKey, oldPriv := newEdKey("2025-01")
	newKey, newPriv := newEdKey("2025-02")
	srv := newJWKSServer(t, jwks(t, jwkOKP(oldKey.ID, "EdDSA", oldKey.Public.(edPub))))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, JWKSRefresh: 10 * time.Millisecond})

	oldTok := sign(t, jwt.SigningMethodEdDSA, oldKey.ID, oldPriv, claims())
	newTok := sign(t, jwt.SigningMethodEdDSA, newKey.ID, newPriv, claims())
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if _, err := v.Verify(newTok); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("new key before rotation: error = %v, want ErrUnknownKey", err)
	}

	// The new key is published next to the old one...
	both := jwks(t, jwkOKP(oldKey.ID, "EdDSA", oldKey.Public.(edPub)), jwkOKP(newKey.ID, "", newKey.Public.(edPub)))
	srv.doc.Store(&both)
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		_, err := v.Verify(newTok)
		return err
	})
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatalf("old key during rotation: %v", err)
	}

	// ...then the old one is retired.
	onlyNew := jwks(t, jwkOKP(newKey.ID, "", newKey.Public.(edPub)))
	srv.doc.Store(&onlyNew)
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if _, err := v.Verify(oldTok); !errors.Is(err, auth.ErrUnknownKey) {
			return fmt.Errorf("old key still accepted (err %v)", err)
		}
		return nil
	})
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
}

func TestJWKSURLRefreshFailureKeepsKeys(t *testing.T) {
	t.Parallel()
	key, priv := newEdKey("k1")
	srv := newJWKSServer(t, jwks(t, jwkOKP(key.ID, "EdDSA", key.Public.(edPub))))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond})
	tok := sign(t, jwt.SigningMethodEdDSA, key.ID, priv, claims())

	for _, mode := range []string{"status 500", "garbage body", "no usable key"} {
		switch mode {
		case "status 500":
			srv.failing.Store(true)
		case "garbage body":
			srv.failing.Store(false)
			garbage := []byte("{not json")
			srv.doc.Store(&garbage)
		case "no usable key":
			empty := []byte(`{"keys":[]}`)
			srv.doc.Store(&empty)
		}
		// Refreshes are sequential: once two more requests arrived, at least
		// one failing refresh has completed.
		n := srv.requests.Load()
		testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if got := srv.requests.Load(); got < n+2 {
				return fmt.Errorf("%d refreshes since the switch, want 2", got-n)
			}
			return nil
		})
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("%s: Verify after failed refresh: %v", mode, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	f := fixtures()
	down := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(down.Close)
	rsaJWK := jwkRSA("rsa1", "RS256", f.rsa1.Public.(*rsaPub))
	noKid := jwkRSA("", "RS256", f.rsa1.Public.(*rsaPub))
	confused := jwkRSA("rsa1", "HS256", f.rsa1.Public.(*rsaPub))
	badX := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "AAAA"}
	tests := []struct {
		name string
		cfg  auth.Config
		msg  string
	}{
		{"no keys", auth.Config{}, "no keys"},
		{"short secret", auth.Config{Keys: []auth.Key{{ID: "hs", Alg: "HS256", Secret: []byte("short")}}}, "at least 32"},
		{"key without id", auth.Config{Keys: []auth.Key{{Alg: "EdDSA", Public: f.ed.Public}}}, "no id"},
		{"unsupported alg", auth.Config{Keys: []auth.Key{{ID: "k", Alg: "ES256", Public: f.ed.Public}}}, "unsupported alg"},
		{"RS256 with Ed25519 key", auth.Config{Keys: []auth.Key{{ID: "k", Alg: "RS256", Public: f.ed.Public}}}, "*rsa.PublicKey"},
		{"HS256 with public key", auth.Config{Keys: []auth.Key{{ID: "k", Alg: "HS256", Secret: f.hs.Secret, Public: f.ed.Public}}}, "public key"},
		{"duplicate kid", auth.Config{Keys: []auth.Key{f.rsa1, f.rsa1}}, "duplicate key id"},
		{"duplicate kid across sources", auth.Config{Keys: []auth.Key{f.rsa1}, JWKSFile: writeFile(t, "a.json", jwks(t, rsaJWK))}, "duplicate key id"},
		{"missing jwks file", auth.Config{JWKSFile: filepath.Join(t.TempDir(), "nope.json")}, "no such file"},
		{"jwks not json", auth.Config{JWKSFile: writeFile(t, "b.json", []byte("nope"))}, "decode"},
		{"jwk without kid", auth.Config{JWKSFile: writeFile(t, "c.json", jwks(t, noKid))}, "no id"},
		{"jwk RSA with alg HS256", auth.Config{JWKSFile: writeFile(t, "d.json", jwks(t, confused))}, "does not fit kty RSA"},
		{"jwk bad x", auth.Config{JWKSFile: writeFile(t, "e.json", jwks(t, badX))}, "Ed25519 public key is 3 bytes"},
		{"jwks only enc keys", auth.Config{JWKSFile: writeFile(t, "f.json", []byte(`{"keys":[{"kty":"RSA","use":"enc"}]}`))}, "no usable key"},
		{"jwks url not http", auth.Config{JWKSURL: "file:///etc/jwks.json"}, "not an http(s) URL"},
		{"jwks url 404", auth.Config{JWKSURL: down.URL}, "404"},
		{"negative leeway", auth.Config{Keys: []auth.Key{f.hs}, Leeway: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.New(t.Context(), tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, want error containing %q", v, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("New error = %q, want \"auth: ...%s...\"", err, tt.msg)
			}
		})
	}
}
