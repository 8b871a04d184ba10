package webhooks

import "errors"

var (
	// ErrInvalidEndpoint is returned for an endpoint configuration that
	// cannot be run; the error names the endpoint and the field.
	ErrInvalidEndpoint = errors.New("webhooks: invalid endpoint")
	// ErrInvalidConfig is returned by [Start] for a Config it cannot run with.
	ErrInvalidConfig = errors.New("webhooks: invalid config")

	// ErrSignature is returned by [Verify] when no signature in the header
	// matches the body and timestamp.
	ErrSignature = errors.New("webhooks: signature mismatch")
	// ErrMalformedSignature is returned by [Verify] for a header or
	// timestamp it cannot parse.
	ErrMalformedSignature = errors.New("webhooks: malformed signature header")
	// ErrTimestampTolerance is returned by [Verify] when the timestamp is
	// further from now than the tolerance (a replayed or very late request).
	ErrTimestampTolerance = errors.New("webhooks: timestamp outside tolerance")
)
