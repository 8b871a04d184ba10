package events

import "errors"

// ErrInvalid means an event that cannot be published: no id, no kind or an
// invalid conversation id.
var ErrInvalid = errors.New("events: invalid event")
