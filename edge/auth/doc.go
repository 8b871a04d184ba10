// Package auth verifies the JWTs clients present at the WebSocket and REST
// handshake, and mints tokens for development, tests and the load generator.
//
// A [Verifier] holds a set of verification keys: static [Key]s from the
// [Config], the keys of a JWKS file (RFC 7517) read once at [New], and the
// keys of a JWKS URL fetched at [New] and refreshed in the background.
// Supported algorithms are HS256, RS256 and EdDSA (Ed25519).
//
// The algorithm is pinned per key, never taken from the token: the token's
// "kid" header selects the key and the token's "alg" header must equal that
// key's [Key.Alg]. "alg": "none" is always rejected. This closes the classic
// key-confusion attack (an HS256 token "signed" with an RSA public key).
//
// [Verifier.Verify] requires "exp" and "sub" (a valid natter user id, see
// [github.com/natter-im/natter/jetstream/subjects.ValidID]), checks "nbf"
// when present and "iss"/"aud" when the Config asks for them. Every error it
// returns wraps exactly one of the sentinels in errors.go ([ErrExpired],
// [ErrUnknownKey], ...), and [Code] maps it to a stable snake_case code the
// edge sends to the client.
//
// [Mint] signs a token with the claims natter reads; [LoadKeyFile] reads a
// verification key (PEM public key or HMAC secret) from a file for cmd/.
package auth
