package store

import "errors"

var (
	// ErrNotFound is returned when a document does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating something that already exists.
	ErrExists = errors.New("store: already exists")
)
