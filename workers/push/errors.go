package push

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnregistered is a provider's answer that the device token or
	// subscription is no longer valid: the registration is deleted.
	ErrUnregistered = errors.New("push: device unregistered")
	// ErrRejected is a provider's refusal that a retry will not change
	// (a bad request, a payload too large): logged and dropped.
	ErrRejected = errors.New("push: rejected by the provider")
	// ErrConfig is an unusable provider setting (a key that does not
	// parse, a missing team id).
	ErrConfig = errors.New("push: bad provider settings")
	// ErrNoProviders: the handler has no provider, so it must not take
	// entries from the shared consumer ([Handler.Consumes]).
	ErrNoProviders = errors.New("push: no provider configured")
)

// RetryError is a transient failure (429, 5xx, a network error): retry
// after After (zero: the handler's back-off).
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("push: retry after %v: %v", e.After, e.Err)
	}
	return "push: retry: " + e.Err.Error()
}

func (e *RetryError) Unwrap() error { return e.Err }
