package gctune

import "errors"

var (
	// ErrBadPercent is a GC percent that is not a whole number of 1 or more
	// or off.
	ErrBadPercent = errors.New("gctune: bad GC percent")
	// ErrBadMemory is a memory limit that is not bytes with an optional
	// unit.
	ErrBadMemory = errors.New("gctune: bad memory limit")
)
