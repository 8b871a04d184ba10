package store

import "errors"

var (
	// ErrNotFound is returned when a document does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating something that already exists.
	ErrExists = errors.New("store: already exists")
	// ErrConflict is returned by a conditional write when the document
	// changed since it was read (its rev moved): read it again and retry.
	ErrConflict = errors.New("store: changed concurrently")
	// ErrLockLost is the answer of a change whose lock was broken while it
	// ran (its lease ran out under a holder whose renewals all failed):
	// retry it.
	ErrLockLost = errors.New("store: lock lost")
	// ErrBadBlock is returned for an archive block that does not hold
	// exactly its BlockSize consecutive messages.
	ErrBadBlock = errors.New("store: not a complete archive block")
)
