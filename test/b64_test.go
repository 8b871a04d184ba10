package test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// expiredToken is a correctly signed token that expired an hour ago
// (auth.Mint only makes live tokens).
func expiredToken(t testing.TB, user string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		Audience:  jwt.ClaimStrings{"natter-test"},
		IssuedAt:  jwt.NewNumericDate(time.Now().Add(-2 * time.Hour)),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
	})
	tok.Header["kid"] = testKey.ID
	s, err := tok.SignedString(testKey.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
