package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/edge/auth"
)

// testVerifier has every fixture key and checks issuer and audience.
func testVerifier(tb testing.TB) *auth.Verifier {
	return newVerifier(tb, auth.Config{
		Keys:     fixtures().allKeys(),
		Issuer:   testIssuer,
		Audience: testAudience,
	})
}

func TestVerifyOK(t *testing.T) {
	t.Parallel()
	f := fixtures()
	v := testVerifier(t)
	now := time.Now()
	tests := []struct {
		name       string
		token      string
		user, dev  string
		wantExpiry time.Time
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims()), "alice", "", now.Add(time.Hour)},
		{"RS256 key 1", sign(t, jwt.SigningMethodRS256, "rsa1", f.rsa1Priv, claims()), "alice", "", now.Add(time.Hour)},
		{"RS256 key 2", sign(t, jwt.SigningMethodRS256, "rsa2", f.rsa2Priv, claims(set("sub", "bob"))), "bob", "", now.Add(time.Hour)},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, "ed", f.edPriv, claims()), "alice", "", now.Add(time.Hour)},
		{"device claim", sign(t, jwt.SigningMethodEdDSA, "ed", f.edPriv, claims(set("dev", "phone-1"))), "alice", "phone-1", now.Add(time.Hour)},
		{"aud array", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims(set("aud", []string{"other", testAudience}))), "alice", "", now.Add(time.Hour)},
		{"exp within leeway", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims(set("exp", now.Add(-10*time.Second).Unix()))), "alice", "", now.Add(-10 * time.Second)},
		{"nbf within leeway", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims(set("nbf", now.Add(10*time.Second).Unix()))), "alice", "", now.Add(time.Hour)},
		{"nbf past", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims(set("nbf", now.Add(-time.Minute).Unix()))), "alice", "", now.Add(time.Hour)},
		{"max length sub", sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, claims(set("sub", strings.Repeat("a", 64)))), strings.Repeat("a", 64), "", now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.User != tt.user || c.Device != tt.dev {
				t.Errorf("claims = %+v, want user %q dev %q", c, tt.user, tt.dev)
			}
			// The fixtures read the clock after now: exp may be one second on.
			if d := c.ExpiresAt.Sub(tt.wantExpiry.Truncate(time.Second)); d < 0 || d > time.Second {
				t.Errorf("ExpiresAt = %v, want %v (or a second later)", c.ExpiresAt, tt.wantExpiry.Truncate(time.Second))
			}
		})
	}
}

func TestVerifySingleKeyWithoutKid(t *testing.T) {
	t.Parallel()
	f := fixtures()
	v := newVerifier(t, auth.Config{Keys: []auth.Key{f.ed}})
	c, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, "", f.edPriv, claims()))
	if err != nil || c.User != "alice" {
		t.Fatalf("Verify = %+v, %v; want alice", c, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	f := fixtures()
	v := testVerifier(t)
	now := time.Now()
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, "hs", f.hs.Secret, c) }
	valid := hs(claims())
	otherPayload := strings.Split(hs(claims(set("sub", "mallory"))), ".")[1]
	validParts := strings.Split(valid, ".")
	tests := []struct {
		name  string
		token string
		want  error
		code  string
		msg   string // substring of the error message
	}{
		{"empty", "", auth.ErrMissingToken, "missing_token", "auth: missing token"},
		{"garbage", "not a token", auth.ErrMalformed, "malformed_token", "auth: malformed token"},
		{"garbage segments", "a.b.c", auth.ErrMalformed, "malformed_token", "header"},
		{"too many segments", valid + ".x", auth.ErrMalformed, "malformed_token", "segments"},
		{"header not object", rawToken(t, []int{1}, claims(), "x"), auth.ErrMalformed, "malformed_token", "JSON object"},
		{"no alg", rawToken(t, map[string]any{"kid": "hs"}, claims(), "x"), auth.ErrMalformed, "malformed_token", "no alg"},
		{"kid not string", rawToken(t, map[string]any{"alg": "HS256", "kid": 7}, claims(), "x"), auth.ErrMalformed, "malformed_token", "kid"},
		{"crit header", rawToken(t, map[string]any{"alg": "HS256", "kid": "hs", "crit": []string{"b64"}, "b64": false}, claims(), "x"), auth.ErrMalformed, "malformed_token", "crit"},
		{"too long", valid + strings.Repeat("A", auth.MaxTokenLen), auth.ErrMalformed, "malformed_token", "limit"},
		{"expired", hs(claims(set("exp", now.Add(-time.Hour).Unix()))), auth.ErrExpired, "token_expired", "auth: token expired at " + now.Add(-time.Hour).UTC().Format("2006-01-02T15")},
		{"nbf in future", hs(claims(set("nbf", now.Add(time.Hour).Unix()))), auth.ErrNotYetValid, "not_yet_valid", "not before"},
		{"no exp", hs(claims(set("exp", nil))), auth.ErrMalformed, "malformed_token", "no exp"},
		{"exp not a number", hs(claims(set("exp", "tomorrow"))), auth.ErrMalformed, "malformed_token", "malformed"},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(), ""), auth.ErrAlgMismatch, "alg_mismatch", `"none"`},
		{"alg none with kid", rawToken(t, map[string]any{"alg": "none", "kid": "hs"}, claims(), ""), auth.ErrAlgMismatch, "alg_mismatch", `"none"`},
		{"alg NONE", rawToken(t, map[string]any{"alg": "NONE", "kid": "hs"}, claims(), ""), auth.ErrAlgMismatch, "alg_mismatch", `"NONE"`},
		{
			// Key confusion: HMAC "signed" with the RSA public key, named by its kid.
			"HS256 with RSA kid", sign(t, jwt.SigningMethodHS256, "rsa1", publicPEM(t, f.rsa1.Public), claims()),
			auth.ErrAlgMismatch, "alg_mismatch", `token alg "HS256", key "rsa1" is RS256`,
		},
		{"RS256 with EdDSA kid", sign(t, jwt.SigningMethodRS256, "ed", f.rsa1Priv, claims()), auth.ErrAlgMismatch, "alg_mismatch", `key "ed" is EdDSA`},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, "k9", f.hs.Secret, claims()), auth.ErrUnknownKey, "unknown_kid", `auth: unknown key id "k9"`},
		{"no kid, several keys", sign(t, jwt.SigningMethodRS256, "", f.rsa1Priv, claims()), auth.ErrUnknownKey, "unknown_kid", "no kid and 4 keys"},
		{"wrong audience", hs(claims(set("aud", "someone-else"))), auth.ErrBadAudience, "bad_audience", `"someone-else", want "natter"`},
		{"no audience", hs(claims(set("aud", nil))), auth.ErrBadAudience, "bad_audience", "bad audience"},
		{"wrong issuer", hs(claims(set("iss", "evil"))), auth.ErrBadIssuer, "bad_issuer", `auth: bad issuer "evil", want "natter-test"`},
		{"no issuer", hs(claims(set("iss", nil))), auth.ErrBadIssuer, "bad_issuer", "bad issuer"},
		{"issuer checked before expiry", hs(claims(set("iss", "evil"), set("exp", now.Add(-time.Hour).Unix()))), auth.ErrBadIssuer, "bad_issuer", "evil"},
		{"signed by other key", sign(t, jwt.SigningMethodRS256, "rsa1", f.rsa2Priv, claims()), auth.ErrBadSignature, "bad_signature", `bad signature for key "rsa1"`},
		{"tampered payload", validParts[0] + "." + otherPayload + "." + validParts[2], auth.ErrBadSignature, "bad_signature", "bad signature"},
		{"empty signature", validParts[0] + "." + validParts[1] + ".", auth.ErrBadSignature, "bad_signature", "bad signature"},
		{"bad signature and expired", sign(t, jwt.SigningMethodHS256, "hs", []byte(strings.Repeat("x", 32)), claims(set("exp", now.Add(-time.Hour).Unix()))), auth.ErrBadSignature, "bad_signature", "bad signature"},
		{"missing sub", hs(claims(set("sub", nil))), auth.ErrBadSubject, "bad_subject", "no sub"},
		{"sub with space", hs(claims(set("sub", "al ice"))), auth.ErrBadSubject, "bad_subject", `sub "al ice"`},
		{"sub with subject wildcard", hs(claims(set("sub", "alice.>"))), auth.ErrBadSubject, "bad_subject", "alice.>"},
		{"sub too long", hs(claims(set("sub", strings.Repeat("a", 65)))), auth.ErrBadSubject, "bad_subject", "1..64"},
		{"sub not a string", hs(claims(set("sub", 42))), auth.ErrMalformed, "malformed_token", "malformed"},
		{"bad dev", hs(claims(set("dev", "phone.1"))), auth.ErrBadSubject, "bad_subject", `dev "phone.1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify = %+v, want error %v", c, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %q", err, tt.want)
			}
			if e := oneSentinel(err); e != nil {
				t.Errorf("error %q: %v", err, e)
			}
			if got := auth.Code(err); got != tt.code {
				t.Errorf("Code = %q, want %q (error %q)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if c != (auth.Claims{}) {
				t.Errorf("claims = %+v on error, want zero", c)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, want string
		err          error
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"bearer abc", "abc", nil},
		{"BEARER   abc  ", "abc", nil},
		{"", "", auth.ErrMissingToken},
		{"   ", "", auth.ErrMissingToken},
		{"Bearer", "", auth.ErrMissingToken},
		{"Bearer   ", "", auth.ErrMissingToken},
		{"Basic dXNlcjpwYXNz", "", auth.ErrMalformed},
		{"abc.def.ghi", "", auth.ErrMalformed},
		{"Bearer abc def", "", auth.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			t.Parallel()
			got, err := auth.BearerToken(tt.header)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("BearerToken(%q) error = %v, want %v", tt.header, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("BearerToken(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("boom"), "unauthorized"},
		{auth.ErrMissingToken, "missing_token"},
		{auth.ErrMalformed, "malformed_token"},
		{auth.ErrUnknownKey, "unknown_kid"},
		{auth.ErrAlgMismatch, "alg_mismatch"},
		{auth.ErrExpired, "token_expired"},
		{auth.ErrNotYetValid, "not_yet_valid"},
		{auth.ErrBadSignature, "bad_signature"},
		{auth.ErrBadIssuer, "bad_issuer"},
		{auth.ErrBadAudience, "bad_audience"},
		{auth.ErrBadSubject, "bad_subject"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := auth.Code(tt.err); got != tt.want {
				t.Errorf("Code(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	fx := fixtures()
	v := newVerifier(f, auth.Config{Keys: fx.allKeys(), Issuer: testIssuer, Audience: testAudience})
	f.Add(sign(f, jwt.SigningMethodHS256, "hs", fx.hs.Secret, claims()))
	f.Add(sign(f, jwt.SigningMethodEdDSA, "ed", fx.edPriv, claims(set("dev", "d1"))))
	f.Add(rawToken(f, map[string]any{"alg": "none"}, claims(), ""))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if e := oneSentinel(err); e != nil {
				t.Fatalf("error %q: %v", err, e)
			}
			return
		}
		if c.User == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted %q with claims %+v", token, c)
		}
	})
}
