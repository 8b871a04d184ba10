package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/edge/auth"
)

const (
	testIssuer   = "natter-test"
	testAudience = "natter"
)

// fixture holds keys shared by every test: RSA generation is slow, so the
// keys are made once per test binary.
type fixture struct {
	hs         auth.Key
	rsa1, rsa2 auth.Key
	rsa1Priv   *rsa.PrivateKey
	rsa2Priv   *rsa.PrivateKey
	ed         auth.Key
	edPriv     ed25519.PrivateKey
}

var fixtures = sync.OnceValue(func() *fixture {
	f := &fixture{}
	f.hs = auth.Key{ID: "hs", Alg: auth.AlgHS256, Secret: []byte(strings.Repeat("s3cr3t-", 6))}
	var err error
	if f.rsa1Priv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if f.rsa2Priv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	f.rsa1 = auth.Key{ID: "rsa1", Alg: auth.AlgRS256, Public: &f.rsa1Priv.PublicKey}
	f.rsa2 = auth.Key{ID: "rsa2", Alg: auth.AlgRS256, Public: &f.rsa2Priv.PublicKey}
	f.ed, f.edPriv = newEdKey("ed")
	return f
})

// allKeys is the key set of most verifiers in these tests.
func (f *fixture) allKeys() []auth.Key { return []auth.Key{f.hs, f.rsa1, f.rsa2, f.ed} }

func newEdKey(id string) (auth.Key, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return auth.Key{ID: id, Alg: auth.AlgEdDSA, Public: pub}, priv
}

// newVerifier builds a Verifier that lives as long as the test.
func newVerifier(tb testing.TB, cfg auth.Config) *auth.Verifier {
	tb.Helper()
	v, err := auth.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

// claims returns valid claims for testIssuer/testAudience, changed by mods.
func claims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "alice",
		"iss": testIssuer,
		"aud": testAudience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// set returns a mod setting claim k to v (nil deletes it).
func set(k string, v any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) {
		if v == nil {
			delete(c, k)
			return
		}
		c[k] = v
	}
}

// sign signs c by hand with method and key; kid "" means no kid header.
func sign(tb testing.TB, method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// rawToken assembles header.payload.sig from JSON values, for tokens no
// library would sign ("alg": "none", crit headers).
func rawToken(tb testing.TB, header, payload any, sig string) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(payload) + "." + sig
}

func publicPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var sentinels = []error{
	auth.ErrMissingToken, auth.ErrMalformed, auth.ErrUnknownKey, auth.ErrAlgMismatch,
	auth.ErrExpired, auth.ErrNotYetValid, auth.ErrBadSignature, auth.ErrBadIssuer,
	auth.ErrBadAudience, auth.ErrBadSubject,
}

// oneSentinel reports an error unless err wraps exactly one sentinel.
func oneSentinel(err error) error {
	var n int
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("wraps %d sentinels, want 1", n)
	}
	return nil
}

// JWK helpers.

type (
	rsaPub = rsa.PublicKey
	edPub  = ed25519.PublicKey
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkRSA(kid, alg string, pub *rsa.PublicKey) map[string]any {
	m := map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func jwkOKP(kid, alg string, pub ed25519.PublicKey) map[string]any {
	m := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pub)}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func jwks(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
