package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/jetstream/subjects"
)

// MaxTokenLen is the longest token Verify parses; longer ones are
// [ErrMalformed].
const MaxTokenLen = 8 << 10

// Claims is what natter takes from a verified token.
type Claims struct {
	// User is the "sub" claim: a valid user id.
	User string
	// Device is the optional "dev" claim: a valid device id, or "".
	Device string
	// ExpiresAt is the "exp" claim.
	ExpiresAt time.Time
	// ID is the optional "jti" claim, or "".
	ID string
	// IssuedAt is the optional "iat" claim; zero when absent.
	IssuedAt time.Time
}

// tokenClaims is the JSON payload natter reads and Mint writes.
type tokenClaims struct {
	jwt.RegisteredClaims
	Device string `json:"dev,omitempty"`
}

// Verifier verifies client tokens. It is safe for concurrent use.
type Verifier struct {
	keys     atomic.Pointer[keySet]
	static   []Key // Config.Keys and the JWKS file: fixed for v's lifetime
	issuer   string
	audience string
	parsers  map[string]*jwt.Parser // by alg
	log      *slog.Logger
}

// keySet is an immutable set of keys by id.
type keySet struct {
	byID map[string]Key
	only Key // the key, when the set holds exactly one
}

// newKeySet merges key lists; a kid may appear only once across them.
func newKeySet(lists ...[]Key) (*keySet, error) {
	s := &keySet{byID: make(map[string]Key)}
	for _, l := range lists {
		for _, k := range l {
			if _, dup := s.byID[k.ID]; dup {
				return nil, fmt.Errorf("duplicate key id %s", quote(k.ID))
			}
			s.byID[k.ID] = k
			s.only = k
		}
	}
	if len(s.byID) != 1 {
		s.only = Key{}
	}
	return s, nil
}

// lookup selects the key for a token's kid ("" when the header has none).
func (s *keySet) lookup(kid string) (Key, error) {
	if kid == "" {
		if len(s.byID) == 1 {
			return s.only, nil
		}
		return Key{}, fmt.Errorf("%w: token has no kid and %d keys are configured", ErrUnknownKey, len(s.byID))
	}
	k, ok := s.byID[kid]
	if !ok {
		return Key{}, fmt.Errorf("%w %s", ErrUnknownKey, quote(kid))
	}
	return k, nil
}

// New returns a Verifier for cfg. It reads cfg.JWKSFile and fetches
// cfg.JWKSURL before it returns; with a JWKSURL it then refreshes those keys
// every cfg.JWKSRefresh until ctx is done. It fails when a key or JWK Set is
// invalid, a kid is configured twice, or there is no key at all.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.JWKSRefresh < 0 || cfg.Leeway < 0 {
		return nil, errors.New("auth: negative JWKSRefresh or Leeway")
	}
	cfg = cfg.withDefaults()
	v := &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		parsers:  make(map[string]*jwt.Parser),
		log:      cfg.Logger.With("component", "auth"),
	}
	for _, alg := range []string{AlgHS256, AlgRS256, AlgEdDSA} {
		opts := []jwt.ParserOption{
			jwt.WithValidMethods([]string{alg}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(cfg.Leeway),
		}
		if cfg.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(cfg.Issuer))
		}
		if cfg.Audience != "" {
			opts = append(opts, jwt.WithAudience(cfg.Audience))
		}
		v.parsers[alg] = jwt.NewParser(opts...)
	}
	for i, k := range cfg.Keys {
		k, err := k.check()
		if err != nil {
			return nil, fmt.Errorf("auth: Keys[%d]: %w", i, err)
		}
		v.static = append(v.static, k)
	}
	if cfg.JWKSFile != "" {
		keys, err := readJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth: jwks file %s: %w", cfg.JWKSFile, err)
		}
		v.static = append(v.static, keys...)
	}
	var remote []Key
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("auth: jwks url %q is not an http(s) URL", cfg.JWKSURL)
		}
		if remote, err = fetchJWKS(ctx, cfg.HTTPClient, cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("auth: jwks url: %w", err)
		}
	}
	set, err := newKeySet(v.static, remote)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if len(set.byID) == 0 {
		return nil, errors.New("auth: no keys configured (set Keys, JWKSFile or JWKSURL)")
	}
	v.keys.Store(set)
	if cfg.JWKSURL != "" {
		go v.refreshLoop(ctx, cfg)
	}
	return v, nil
}

func readJWKSFile(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKSSize)
	}
	return parseJWKS(data)
}

// refreshLoop refetches cfg.JWKSURL every cfg.JWKSRefresh until ctx is done.
// A failed fetch, or keys that clash with the static ones, keep the old set.
func (v *Verifier) refreshLoop(ctx context.Context, cfg Config) {
	t := time.NewTicker(cfg.JWKSRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		remote, err := fetchJWKS(ctx, cfg.HTTPClient, cfg.JWKSURL)
		var set *keySet
		if err == nil {
			set, err = newKeySet(v.static, remote)
		}
		if err != nil {
			if ctx.Err() == nil {
				v.log.Warn("jwks refresh failed, keeping previous keys", "url", cfg.JWKSURL, "err", err)
			}
			continue
		}
		v.keys.Store(set)
	}
}

// header is the part of a JOSE header Verify reads before picking a key.
type header struct {
	alg, kid string
}

// parseHeader decodes the header of token the way jwt does (base64url, then
// a JSON object), so that the key chosen here and the alg jwt checks agree.
func parseHeader(token string) (header, error) {
	if strings.Count(token, ".") != 2 {
		return header{}, fmt.Errorf("%w: want three dot-separated segments", ErrMalformed)
	}
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return header{}, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return header{}, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	var h header
	var ok bool
	if h.alg, ok = m["alg"].(string); !ok {
		return header{}, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	if kid, present := m["kid"]; present {
		if h.kid, ok = kid.(string); !ok {
			return header{}, fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
	}
	if _, present := m["crit"]; present {
		// RFC 7515 section 4.1.11: we understand no extension, so any
		// critical one makes the token invalid.
		return header{}, fmt.Errorf("%w: unsupported crit header", ErrMalformed)
	}
	return h, nil
}

// Verify checks token and returns its claims. In order, it rejects: an empty
// token ([ErrMissingToken]); a token that is not a JWT or longer than
// MaxTokenLen ([ErrMalformed]); alg "none" ([ErrAlgMismatch]); a kid naming
// no key, or no kid with several keys ([ErrUnknownKey]); an alg other than
// the key's ([ErrAlgMismatch]); a bad signature ([ErrBadSignature]); bad
// claims: missing exp ([ErrMalformed]), then iss ([ErrBadIssuer]), aud
// ([ErrBadAudience]), exp ([ErrExpired]), nbf ([ErrNotYetValid]); and last a
// missing or invalid sub or an invalid dev ([ErrBadSubject]). The error wraps
// exactly one of these sentinels and its message names the problem.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissingToken
	}
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(token), MaxTokenLen)
	}
	h, err := parseHeader(token)
	if err != nil {
		return Claims{}, err
	}
	if strings.EqualFold(h.alg, "none") {
		return Claims{}, fmt.Errorf("%w: alg %s is never accepted", ErrAlgMismatch, quote(h.alg))
	}
	key, err := v.keys.Load().lookup(h.kid)
	if err != nil {
		return Claims{}, err
	}
	if h.alg != key.Alg {
		return Claims{}, fmt.Errorf("%w: token alg %s, key %s is %s", ErrAlgMismatch, quote(h.alg), quote(key.ID), key.Alg)
	}
	var tc tokenClaims
	_, err = v.parsers[key.Alg].ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) {
		return key.verifyKey(), nil
	})
	if err != nil {
		return Claims{}, v.classify(err, &tc, key)
	}
	if err := subjects.ValidID(tc.Subject); err != nil {
		if tc.Subject == "" {
			return Claims{}, fmt.Errorf("%w: token has no sub", ErrBadSubject)
		}
		return Claims{}, fmt.Errorf("%w: sub %s is not 1..%d characters of [A-Za-z0-9_-]", ErrBadSubject, quote(tc.Subject), subjects.MaxIDLen)
	}
	if tc.Device != "" && subjects.ValidID(tc.Device) != nil {
		return Claims{}, fmt.Errorf("%w: dev %s is not 1..%d characters of [A-Za-z0-9_-]", ErrBadSubject, quote(tc.Device), subjects.MaxIDLen)
	}
	cl := Claims{User: tc.Subject, Device: tc.Device, ExpiresAt: tc.ExpiresAt.Time, ID: tc.ID}
	if tc.IssuedAt != nil {
		cl.IssuedAt = tc.IssuedAt.Time
	}
	return cl, nil
}

// classify maps a jwt parse error to one sentinel. The signature is checked
// before the claims, so claims named in a message have been verified.
func (v *Verifier) classify(err error, tc *tokenClaims, key Key) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w for key %s", ErrBadSignature, quote(key.ID))
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case tc.ExpiresAt == nil:
		return fmt.Errorf("%w: token has no exp", ErrMalformed)
	case v.issuer != "" && tc.Issuer != v.issuer:
		return fmt.Errorf("%w %s, want %q", ErrBadIssuer, quote(tc.Issuer), v.issuer)
	case v.audience != "" && !slices.Contains(tc.Audience, v.audience):
		return fmt.Errorf("%w %s, want %q", ErrBadAudience, quote(strings.Join(tc.Audience, " ")), v.audience)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w at %s", ErrExpired, tc.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenNotValidYet) && tc.NotBefore != nil:
		return fmt.Errorf("%w: not before %s", ErrNotYetValid, tc.NotBefore.UTC().Format(time.RFC3339))
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// BearerToken extracts the token from an Authorization header value
// "Bearer <token>" (scheme case-insensitive). It returns [ErrMissingToken]
// for an empty header or an empty token and [ErrMalformed] for another
// scheme or a token containing white space.
func BearerToken(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", ErrMissingToken
	}
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: authorization scheme %s is not Bearer", ErrMalformed, quote(scheme))
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrMissingToken)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%w: bearer token contains white space", ErrMalformed)
	}
	return tok, nil
}
