package revoke

import "errors"

var (
	// ErrRevoked: the token is revoked (by its id, its user or its device).
	ErrRevoked = errors.New("revoke: token revoked")
	// ErrBanned: the token's user is banned.
	ErrBanned = errors.New("revoke: user banned")
	// ErrInvalid: a revocation or ban the Writer was given is not valid.
	ErrInvalid = errors.New("revoke: invalid")
)
