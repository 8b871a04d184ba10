package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/internal/cli"
)

// runToken implements "natter token": it mints an HS256 token that an edge
// given the same token flags (or variables) accepts: signed with the first
// HS256 key of that configuration (the --jwt-secret or --jwt-secret-file
// secret, then the HS256 keys of --jwt-keys in order), or, with none of
// them set, with the dev signing key under --data, as natter dev does. The
// token's kid is the key's id (key ids: docs/config.md, "Tokens").
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter token", "natter token --user ID [flags]", stdout)
	var user, device, data, iss, aud string
	var ttl time.Duration
	fs.String(&user, "user", "NATTER_TOKEN_USER", "", "user id (the token's sub); required")
	fs.String(&device, "device", "NATTER_TOKEN_DEVICE", "", "device id (optional dev claim)")
	fs.String(&data, "data", "NATTER_DATA", "./data", "data dir of natter dev (holds the dev signing key, used when no key flag is set)")
	var a authFlags
	a.register(fs)
	fs.String(&iss, "iss", "", "", "iss claim (short for --jwt-issuer)")
	fs.String(&aud, "aud", "", "", "aud claim (short for --jwt-audience)")
	fs.Duration(&ttl, "ttl", "NATTER_TOKEN_TTL", auth.DefaultTTL, "token lifetime", cli.Positive[time.Duration]())
	if err := parse(fs, args); err != nil {
		return err
	}
	if user == "" {
		return usageError{fmt.Errorf("--user (NATTER_TOKEN_USER): required")}
	}
	a.dev, a.data = true, &data
	cfg, err := a.config()
	if err != nil {
		return err
	}
	key, err := mintKey(cfg)
	if err != nil {
		return err
	}
	if iss != "" {
		cfg.Issuer = iss
	}
	if aud != "" {
		cfg.Audience = aud
	}
	tok, err := auth.Mint(key, nil, auth.MintClaims{User: user, Device: device, Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: ttl})
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// mintKey is the key natter token signs with: the first HS256 key of the
// edge's verifier configuration (public keys cannot sign).
func mintKey(cfg auth.Config) (auth.Key, error) {
	for _, k := range cfg.Keys {
		if k.Alg == auth.AlgHS256 {
			return k, nil
		}
	}
	return auth.Key{}, usageError{errors.New("--jwt-keys (NATTER_JWT_KEYS): natter token signs with an HS256 secret (--jwt-secret-file, or an HS256 key of --jwt-keys); public keys and JWKS only verify, their tokens come from the identity provider")}
}
