package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
)

// maxJWKSSize bounds a JWK Set document, file or HTTP body.
const maxJWKSSize = 1 << 20

// jwk is the subset of an RFC 7517 JSON Web Key this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// RSA (RFC 7518 section 6.3).
	N string `json:"n"`
	E string `json:"e"`
	// OKP (RFC 8037).
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// parseJWKS decodes a JWK Set. Keys this package cannot verify with are
// skipped: "use" other than "sig", kty other than RSA and OKP, RSA algs
// other than RS256, OKP curves other than Ed25519. A usable key that is
// malformed (no kid, bad base64, short modulus, alg contradicting kty, a
// duplicate kid) fails the whole set, as does a set with no usable key.
// A key with no alg gets RS256 (RSA) or EdDSA (OKP).
func parseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode jwk set: %w", err)
	}
	var keys []Key
	seen := make(map[string]bool, len(set.Keys))
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("jwk %d: %w", i, err)
		}
		k, ok, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("jwk %d (kid %s): %w", i, quote(j.Kid), err)
		}
		if !ok {
			continue
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("jwk %d: duplicate kid %s", i, quote(k.ID))
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwk set has no usable key (RSA RS256 or OKP Ed25519)")
	}
	return keys, nil
}

// key converts j. ok is false for a key this package skips.
func (j jwk) key() (k Key, ok bool, err error) {
	if j.Use != "" && j.Use != "sig" {
		return Key{}, false, nil
	}
	switch j.Kty {
	case "RSA":
		switch j.Alg {
		case "", AlgRS256:
		case "RS384", "RS512", "PS256", "PS384", "PS512", "RSA-OAEP", "RSA-OAEP-256", "RSA1_5":
			return Key{}, false, nil
		default:
			return Key{}, false, fmt.Errorf("alg %s does not fit kty RSA", quote(j.Alg))
		}
		pub, err := j.rsaPublic()
		if err != nil {
			return Key{}, false, err
		}
		k = Key{ID: j.Kid, Alg: AlgRS256, Public: pub}
	case "OKP":
		if j.Crv != "Ed25519" {
			return Key{}, false, nil // X25519 (encryption) or Ed448
		}
		switch j.Alg {
		case "", AlgEdDSA, "Ed25519": // "Ed25519" is the RFC 9864 name
		default:
			return Key{}, false, fmt.Errorf("alg %s does not fit an Ed25519 key", quote(j.Alg))
		}
		x, err := decodeB64URL(j.X)
		if err != nil {
			return Key{}, false, fmt.Errorf("x: %w", err)
		}
		k = Key{ID: j.Kid, Alg: AlgEdDSA, Public: ed25519.PublicKey(x)}
	default:
		return Key{}, false, nil // EC, oct and future types
	}
	k, err = k.check()
	if err != nil {
		return Key{}, false, err
	}
	return k, true, nil
}

// rsaPublic decodes the n and e members of an RSA JWK.
func (j jwk) rsaPublic() (*rsa.PublicKey, error) {
	n, err := decodeB64URL(j.N)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	e, err := decodeB64URL(j.E)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	if len(e) > 4 {
		return nil, fmt.Errorf("e is %d bytes, want at most 4", len(e))
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("e = %d is not a valid RSA exponent", exp)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

// decodeB64URL decodes unpadded (or, leniently, padded) base64url.
func decodeB64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// fetchJWKS GETs and parses the JWK Set at url.
func fetchJWKS(ctx context.Context, c *http.Client, url string) ([]Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", url, maxJWKSSize)
	}
	return parseJWKS(data)
}
