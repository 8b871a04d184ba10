package capacity

import (
	"errors"
	"fmt"
)

// ErrLoad reports a load the model cannot plan for; the error is a
// *LoadError naming the field.
var ErrLoad = errors.New("capacity: bad load")

// LoadError is a field of a [Load] out of range. It wraps [ErrLoad].
type LoadError struct {
	// Field is the Load field ("Online").
	Field string
	// Value is its value.
	Value float64
	// Want says what the field takes.
	Want string
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%v: %s %v: want %s", ErrLoad, e.Field, e.Value, e.Want)
}

func (e *LoadError) Unwrap() error { return ErrLoad }
