package actions

import "errors"

// ErrConflict is an update that kept conflicting with concurrent writers.
var ErrConflict = errors.New("actions: still conflicting")

// ErrCorrupt is a record that does not decode.
var ErrCorrupt = errors.New("actions: corrupt record")
