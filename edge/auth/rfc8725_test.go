package auth_test

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/edge/auth"
)

// TestRFC8725 runs the attacks of RFC 8725 (JWT Best Current Practices)
// against verifiers configured the ways an edge is: one RS256 key only
// (the setting where algorithm confusion bites: no kid needed), one RS256
// key from a JWKS file, and every fixture key. Each token is refused with
// the documented code, and the message never echoes more than a bounded
// part of the attacker's input.
func TestRFC8725(t *testing.T) {
	t.Parallel()
	f := fixtures()
	now := time.Now()
	pemPub := publicPEM(t, f.rsa1.Public)
	der, err := x509.MarshalPKIXPublicKey(f.rsa1.Public)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&f.rsa1Priv.PublicKey)
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, jwks(t, jwkRSA("rsa1", "RS256", &f.rsa1Priv.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	jwkJSON, _ := json.Marshal(jwkRSA("rsa1", "RS256", &f.rsa1Priv.PublicKey))
	verifiers := map[string]*auth.Verifier{
		"one RS256 key": newVerifier(t, auth.Config{Keys: []auth.Key{f.rsa1}, Issuer: testIssuer, Audience: testAudience}),
		"RS256 by JWKS": newVerifier(t, auth.Config{JWKSFile: jwksPath, Issuer: testIssuer, Audience: testAudience}),
		"every key":     testVerifier(t),
	}
	rs := func(kid string, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, kid, f.rsa1Priv, c) }
	type attack struct {
		name, token, code string
	}
	attacks := []attack{
		// 2.1 / 3.1: alg none, however spelled, with or without a kid or signature.
		{"alg none", rawToken(t, map[string]any{"alg": "none"}, claims(), ""), "alg_mismatch"},
		{"alg None, kid", rawToken(t, map[string]any{"alg": "None", "kid": "rsa1"}, claims(), ""), "alg_mismatch"},
		{"alg nOnE, signature", rawToken(t, map[string]any{"alg": "nOnE", "kid": "rsa1"}, claims(), "c2ln"), "alg_mismatch"},
		{"alg empty", rawToken(t, map[string]any{"alg": "", "kid": "rsa1"}, claims(), ""), "alg_mismatch"},
		// 2.2 / 3.1: RS256-to-HS256 confusion, the public key as HMAC secret
		// in every encoding an attacker may guess.
		{"HS256 with PEM public key, kid", sign(t, jwt.SigningMethodHS256, "rsa1", pemPub, claims()), "alg_mismatch"},
		{"HS256 with PEM public key, no kid", sign(t, jwt.SigningMethodHS256, "", pemPub, claims()), ""},
		{"HS256 with trimmed PEM", sign(t, jwt.SigningMethodHS256, "rsa1", []byte(strings.TrimSpace(string(pemPub))), claims()), "alg_mismatch"},
		{"HS256 with DER public key", sign(t, jwt.SigningMethodHS256, "rsa1", der, claims()), "alg_mismatch"},
		{"HS256 with PKCS1 public key", sign(t, jwt.SigningMethodHS256, "rsa1", pkcs1, claims()), "alg_mismatch"},
		{"HS256 with the JWK", sign(t, jwt.SigningMethodHS256, "rsa1", jwkJSON, claims()), "alg_mismatch"},
		{"HS512 with PEM public key", sign(t, jwt.SigningMethodHS512, "rsa1", pemPub, claims()), "alg_mismatch"},
		{"PS256 for an RS256 key", sign(t, jwt.SigningMethodPS256, "rsa1", f.rsa1Priv, claims()), "alg_mismatch"},
		{"RS512 for an RS256 key", sign(t, jwt.SigningMethodRS512, "rsa1", f.rsa1Priv, claims()), "alg_mismatch"},
		// 3.10: kid is attacker input: never a path, a query or a URL.
		{"kid path traversal", sign(t, jwt.SigningMethodHS256, "../../../../../../dev/null", []byte{}, claims()), "unknown_kid"},
		{"kid absolute path", sign(t, jwt.SigningMethodHS256, "/proc/self/environ", []byte(strings.Repeat("x", 32)), claims()), "unknown_kid"},
		{"kid SQL injection", rs("rsa1' OR '1'='1", claims()), "unknown_kid"},
		{"kid SQL comment", rs("x' UNION SELECT 'secret' --", claims()), "unknown_kid"},
		{"kid URL", rs("https://evil.example/jwks.json", claims()), "unknown_kid"},
		{"kid NUL suffix", rs("rsa1\x00", claims()), "unknown_kid"},
		{"kid trailing space", rs("rsa1 ", claims()), "unknown_kid"},
		{"kid other case", rs("RSA1", claims()), "unknown_kid"},
		{"kid huge", rs(strings.Repeat("k", 4000), claims()), "unknown_kid"},
		{"jku header ignored", rawToken(t, map[string]any{"alg": "HS256", "kid": "evil", "jku": "https://evil.example/jwks.json"}, claims(), "x"), "unknown_kid"},
		// Claims (3.8, 3.9; RFC 7519): exp required, nbf, iss and aud checked.
		{"missing exp", rs("rsa1", claims(set("exp", nil))), "malformed_token"},
		{"exp far past", rs("rsa1", claims(set("exp", now.Add(-24*time.Hour).Unix()))), "token_expired"},
		{"nbf in the future", rs("rsa1", claims(set("nbf", now.Add(10*time.Minute).Unix()))), "not_yet_valid"},
		{"wrong aud", rs("rsa1", claims(set("aud", "natter-admin"))), "bad_audience"},
		{"aud list without ours", rs("rsa1", claims(set("aud", []string{"a", "b"}))), "bad_audience"},
		{"aud of other case", rs("rsa1", claims(set("aud", strings.ToUpper(testAudience)))), "bad_audience"},
		{"wrong iss", rs("rsa1", claims(set("iss", "https://evil.example"))), "bad_issuer"},
		{"iss prefix", rs("rsa1", claims(set("iss", testIssuer+".evil"))), "bad_issuer"},
		{"no iss", rs("rsa1", claims(set("iss", nil))), "bad_issuer"},
	}
	for vname, v := range verifiers {
		for _, a := range attacks {
			t.Run(vname+"/"+a.name, func(t *testing.T) {
				t.Parallel()
				code := a.code
				if code == "" {
					// No kid: the one key is picked, whose alg differs; with
					// several keys no key is picked.
					code = "alg_mismatch"
					if vname == "every key" {
						code = "unknown_kid"
					}
				}
				c, err := v.Verify(a.token)
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				if got := auth.Code(err); got != code {
					t.Errorf("code %q, want %q (error %q)", got, code, err)
				}
				if e := oneSentinel(err); e != nil {
					t.Error(e)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error message of %d bytes echoes the input: %.80q...", len(err.Error()), err)
				}
			})
		}
	}
	// The control: the same verifiers take an honest token.
	for vname, v := range verifiers {
		if _, err := v.Verify(rs("rsa1", claims())); err != nil {
			t.Errorf("%s: honest RS256 token refused: %v", vname, err)
		}
	}
}
