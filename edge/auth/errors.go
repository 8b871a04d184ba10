package auth

import (
	"errors"
	"strconv"
)

// Sentinel errors of [Verifier.Verify] and [BearerToken]. Every error Verify
// returns wraps exactly one of them; check with [errors.Is] and turn one into
// a wire code with [Code].
var (
	// ErrMissingToken: no token was presented. Code "missing_token".
	ErrMissingToken = errors.New("auth: missing token")
	// ErrMalformed: the token is not a well-formed JWT (segments, base64,
	// JSON, claim types, missing alg or exp, unsupported crit header).
	// Code "malformed_token".
	ErrMalformed = errors.New("auth: malformed token")
	// ErrUnknownKey: the kid names no configured key, or the token has no
	// kid while several keys are configured. Code "unknown_kid".
	ErrUnknownKey = errors.New("auth: unknown key id")
	// ErrAlgMismatch: the token's alg is not the alg of the key its kid
	// selects, or is "none". Code "alg_mismatch".
	ErrAlgMismatch = errors.New("auth: alg mismatch")
	// ErrExpired: exp (plus leeway) is in the past. Code "token_expired".
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: nbf (minus leeway) is in the future. Code "not_yet_valid".
	ErrNotYetValid = errors.New("auth: token not yet valid")
	// ErrBadSignature: the signature does not verify with the selected key.
	// Code "bad_signature".
	ErrBadSignature = errors.New("auth: bad signature")
	// ErrBadIssuer: iss is missing or is not [Config.Issuer]. Code "bad_issuer".
	ErrBadIssuer = errors.New("auth: bad issuer")
	// ErrBadAudience: aud is missing or does not contain [Config.Audience].
	// Code "bad_audience".
	ErrBadAudience = errors.New("auth: bad audience")
	// ErrBadSubject: sub is missing or not a valid user id, or the optional
	// dev claim is not a valid device id. Code "bad_subject".
	ErrBadSubject = errors.New("auth: bad subject")
)

// codes maps each sentinel to its stable wire code.
var codes = []struct {
	err  error
	code string
}{
	{ErrMissingToken, "missing_token"},
	{ErrMalformed, "malformed_token"},
	{ErrUnknownKey, "unknown_kid"},
	{ErrAlgMismatch, "alg_mismatch"},
	{ErrExpired, "token_expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrBadSignature, "bad_signature"},
	{ErrBadIssuer, "bad_issuer"},
	{ErrBadAudience, "bad_audience"},
	{ErrBadSubject, "bad_subject"},
}

// Code returns the stable snake_case code of the sentinel err wraps
// ("token_expired", "unknown_kid", ...; see the sentinels), "unauthorized"
// for any other error and "" for nil. The codes never change: clients may
// branch on them (for example refresh the token on "token_expired").
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "unauthorized"
}

// maxQuoted bounds how much of a client-supplied string an error message
// repeats.
const maxQuoted = 64

// quote returns s as a Go string literal, cut to maxQuoted bytes, for error
// messages that echo client input.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}
