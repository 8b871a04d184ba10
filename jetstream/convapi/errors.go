package convapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Error codes: the stable "code" of a service error reply.
const (
	// CodeBadFrame: malformed JSON, or a missing or invalid field; the
	// message names the field.
	CodeBadFrame = "bad_frame"
	// CodeNotFound: the conversation does not exist (internal members op).
	CodeNotFound = "not_found"
	// CodeNotMember: the acting user is not a member of the conversation,
	// or it does not exist.
	CodeNotMember = "not_member"
	// CodeForbidden: the user may not do this (change a direct
	// conversation, remove another member without being the creator).
	CodeForbidden = "forbidden"
	// CodeTooBig: the group would exceed the group size limit, or the
	// request names more users than one request may carry.
	CodeTooBig = "too_big"
	// CodeInternal: the service failed.
	CodeInternal = "internal"
	// CodeUnavailable: the store or the service cannot be reached. Retry
	// after a back-off.
	CodeUnavailable = "unavailable"
)

// Error is a service error: a code from the list above and a message for
// humans. Match it with errors.As, or with errors.Is against the sentinels
// ([ErrNotMember] ...), which compare the code only.
type Error struct {
	Code string
	Msg  string

	cause error // the transport error behind an unavailable, if any
}

// Sentinels for errors.Is; each matches any [*Error] with its code.
var (
	ErrBadFrame    = &Error{Code: CodeBadFrame}
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrNotMember   = &Error{Code: CodeNotMember}
	ErrForbidden   = &Error{Code: CodeForbidden}
	ErrTooBig      = &Error{Code: CodeTooBig}
	ErrInternal    = &Error{Code: CodeInternal}
	ErrUnavailable = &Error{Code: CodeUnavailable}
)

func (e *Error) Error() string {
	if e.Msg == "" {
		return "convsvc: " + e.Code
	}
	return "convsvc: " + e.Code + ": " + e.Msg
}

// Is reports whether target is a sentinel (an *Error without message) with
// e's code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Unwrap returns the transport error behind an unavailable error (for
// example nats.ErrNoResponders), or nil.
func (e *Error) Unwrap() error { return e.cause }

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool { return e.Code == CodeUnavailable }

// requestError maps a transport error of a request to what callers get.
func requestError(op string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &Error{Code: CodeUnavailable, Msg: "no conversations service is answering " + op, cause: err}
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Msg: "conversations service timed out on " + op, cause: err}
	case errors.Is(err, nats.ErrMaxPayload):
		return &Error{Code: CodeTooBig, Msg: op + " request is larger than the server's max payload", cause: err}
	}
	return wrapOp(op, err)
}

func wrapOp(op string, err error) error { return fmt.Errorf("convsvc: %s: %w", op, err) }

// Unavailable returns an unavailable error with msg, wrapping the cause
// (the transport or store error behind it, which Unwrap returns).
func Unavailable(msg string, cause error) *Error {
	return &Error{Code: CodeUnavailable, Msg: msg, cause: cause}
}
