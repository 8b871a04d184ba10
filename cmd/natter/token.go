package main

import (
	"fmt"
	"io"
	"time"

	"github.com/natter-im/natter/edge/auth"
)

// runToken implements "natter token": it mints an HS256 token with the dev
// signing key under --data (what natter dev verifies with), or with
// --jwt-secret / --jwt-secret-file for an edge configured with that secret.
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter token", "natter token --user ID [flags]")
	fs.SetOutput(stderr)
	var user, device, data, secret, secretFile, issuer, audience string
	var ttl time.Duration
	fs.str(&user, "user", "NATTER_TOKEN_USER", "", "user id (the token's sub); required")
	fs.str(&device, "device", "NATTER_TOKEN_DEVICE", "", "device id (optional dev claim)")
	fs.str(&data, "data", "NATTER_DATA", "./data", "data dir of natter dev (holds the dev signing key)")
	fs.str(&secret, "jwt-secret", "NATTER_JWT_SECRET", "", "sign with this HS256 secret (key id \"default\") instead of the dev key")
	fs.str(&secretFile, "jwt-secret-file", "NATTER_JWT_SECRET_FILE", "", "sign with the HS256 secret in this file (key id \"default\")")
	fs.str(&issuer, "iss", "NATTER_JWT_ISSUER", "", "iss claim")
	fs.str(&audience, "aud", "NATTER_JWT_AUDIENCE", "", "aud claim")
	fs.duration(&ttl, "ttl", "NATTER_TOKEN_TTL", 24*time.Hour, "token lifetime")
	if err := parse(fs, args); err != nil {
		return err
	}
	if user == "" {
		return usageError{fmt.Errorf("--user: required")}
	}
	a := authFlags{secret: secret, secretFile: secretFile, dev: true, data: &data}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	tok, err := auth.Mint(cfg.Keys[0], nil, auth.MintClaims{User: user, Device: device, Issuer: issuer, Audience: audience, TTL: ttl})
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
