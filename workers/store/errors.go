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
	// ErrLockLost is the cause of the end of the work under a lock that
	// found the lock broken (its lease ran out while its holder lived).
	ErrLockLost = errors.New("store: lock lost")
	// ErrBadBlock is returned for an archive block that does not hold
	// exactly its BlockSize consecutive messages.
	ErrBadBlock = errors.New("store: not a complete archive block")
)
