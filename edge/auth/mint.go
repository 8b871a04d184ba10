package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/jetstream/subjects"
)

// DefaultTTL is the lifetime of a minted token when MintClaims.TTL is zero.
const DefaultTTL = 24 * time.Hour

// MintClaims are the claims [Mint] writes.
type MintClaims struct {
	// User is the "sub" claim: a valid user id. Required.
	User string
	// Device is the "dev" claim: a valid device id. Empty means no claim.
	Device string
	// Issuer is the "iss" claim. Empty means no claim.
	Issuer string
	// Audience is the "aud" claim. Empty means no claim.
	Audience string
	// TTL sets "exp" to now + TTL. Zero value means DefaultTTL (24h);
	// negative is an error.
	TTL time.Duration
	// NotBefore is the "nbf" claim. Zero value means no claim.
	NotBefore time.Time
	// ID is the "jti" claim (what a revocation by token id names). Empty
	// means a random one.
	ID string
}

// Mint signs a token for c with key, setting the "kid" header to key.ID and
// "iat" to now. priv is nil for HS256 (key.Secret signs), an *rsa.PrivateKey
// for RS256 and an ed25519.PrivateKey for EdDSA; when key.Public is set, priv
// must be its private half. Mint is for development, tests and the load
// generator; production tokens come from the identity provider.
func Mint(key Key, priv crypto.PrivateKey, c MintClaims) (string, error) {
	signKey, method, err := signingKey(key, priv)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	if err := subjects.ValidID(c.User); err != nil {
		return "", fmt.Errorf("auth: mint: user: %w", err)
	}
	if c.Device != "" {
		if err := subjects.ValidID(c.Device); err != nil {
			return "", fmt.Errorf("auth: mint: device: %w", err)
		}
	}
	if c.TTL < 0 {
		return "", fmt.Errorf("auth: mint: negative TTL %v", c.TTL)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	now := time.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.User,
			ID:        c.ID,
			Issuer:    c.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
		},
		Device: c.Device,
	}
	if c.Audience != "" {
		tc.Audience = jwt.ClaimStrings{c.Audience}
	}
	if !c.NotBefore.IsZero() {
		tc.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	tok := jwt.NewWithClaims(method, tc)
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(signKey)
	if err != nil {
		return "", fmt.Errorf("auth: mint: sign: %w", err)
	}
	return s, nil
}

// signingKey checks key and priv and returns what jwt signs with.
func signingKey(key Key, priv crypto.PrivateKey) (any, jwt.SigningMethod, error) {
	if key.Alg != AlgHS256 && key.Public == nil {
		// The public half is optional when minting: derive it from priv.
		if s, ok := priv.(crypto.Signer); ok {
			key.Public = s.Public()
		}
	}
	key, err := key.check()
	if err != nil {
		return nil, nil, err
	}
	switch key.Alg {
	case AlgHS256:
		if priv != nil {
			return nil, nil, errors.New("HS256 signs with key.Secret: priv must be nil")
		}
		return key.Secret, jwt.SigningMethodHS256, nil
	case AlgRS256:
		p, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("RS256 needs an *rsa.PrivateKey, got %T", priv)
		}
		if !p.PublicKey.Equal(key.Public) {
			return nil, nil, fmt.Errorf("private key does not match key %q", key.ID)
		}
		return p, jwt.SigningMethodRS256, nil
	default: // AlgEdDSA, as check passed
		p, ok := priv.(ed25519.PrivateKey)
		if !ok || len(p) != ed25519.PrivateKeySize {
			return nil, nil, fmt.Errorf("EdDSA needs an ed25519.PrivateKey, got %T", priv)
		}
		if !p.Public().(ed25519.PublicKey).Equal(key.Public) {
			return nil, nil, fmt.Errorf("private key does not match key %q", key.ID)
		}
		return p, jwt.SigningMethodEdDSA, nil
	}
}
