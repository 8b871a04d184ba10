package protocol

import (
	"errors"
	"net/http"
	"strconv"
)

// Code is a stable error code, the "code" of an err frame and of a REST
// error body. Codes never change meaning within a protocol version.
type Code string

// Error codes.
const (
	// CodeBadJSON: the frame is not a JSON object.
	CodeBadJSON Code = "bad_json"
	// CodeBadFrame: a field is missing or invalid; the message names it.
	CodeBadFrame Code = "bad_frame"
	// CodeUnknownOp: the op is not one of this version's ops.
	CodeUnknownOp Code = "unknown_op"
	// CodeTooBig: the body is longer than max_body.
	CodeTooBig Code = "too_big"
	// CodeBadVersion: the client offered subprotocols but not natter.v1.
	CodeBadVersion Code = "bad_version"
	// CodeUnauthorized: no token, or an invalid or expired one.
	CodeUnauthorized Code = "unauthorized"
	// CodeNotMember: the user is not a member of the conversation.
	CodeNotMember Code = "not_member"
	// CodeNotFound: the conversation (or user) does not exist.
	CodeNotFound Code = "not_found"
	// CodeForbidden: the request is not allowed for this user (e.g. a from
	// that is not the token's user, members.add on a direct conversation).
	CodeForbidden Code = "forbidden"
	// CodeRateLimited: the connection's token bucket is empty; nothing was
	// done. Retry after a back-off.
	CodeRateLimited Code = "rate_limited"
	// CodeTooMany: the request would take the connection past a bound
	// (presence.sub: MaxPresenceUsers watched users); nothing was done.
	CodeTooMany Code = "too_many"
	// CodeConflict: the request conflicts with the current state.
	CodeConflict Code = "conflict"
	// CodeUnavailable: a dependency is down or overloaded. Retry.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: the server failed.
	CodeInternal Code = "internal"
	// CodeTokenRevoked: the token was revoked (by its id, its user or its
	// device); HTTP 401, close 4003.
	CodeTokenRevoked Code = "token_revoked"
	// CodeBanned: the user is banned; HTTP 403, close 4004.
	CodeBanned Code = "banned"
	// CodeUnsupportedType: an upload's content type is not allowed, or its
	// bytes are not of the type it declares; HTTP 415.
	CodeUnsupportedType Code = "unsupported_type"
	// CodeQuotaExceeded: an upload would take the user past the storage
	// quota; HTTP 413.
	CodeQuotaExceeded Code = "quota_exceeded"
)

// Retryable reports whether the same request may succeed if sent again
// after a back-off: true for [CodeUnavailable] and [CodeRateLimited].
func (c Code) Retryable() bool {
	return c == CodeUnavailable || c == CodeRateLimited
}

// HTTPStatus is the status of a REST error with this code.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadJSON, CodeBadFrame, CodeUnknownOp, CodeBadVersion, CodeTooMany:
		return http.StatusBadRequest
	case CodeUnauthorized, CodeTokenRevoked:
		return http.StatusUnauthorized
	case CodeNotMember, CodeForbidden, CodeBanned:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeTooBig, CodeQuotaExceeded:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedType:
		return http.StatusUnsupportedMediaType
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is a protocol error: what an err frame carries. [Decode],
// [Request.Validate], [CheckBody] and [DecodeServer] return it, and a client
// gets one for every err frame ([ServerFrame].Err).
type Error struct {
	// ID is the request id, "" when it could not be read.
	ID string `json:"id,omitempty"`
	// Code is the stable error code.
	Code Code `json:"code"`
	// Msg is a human-readable message; for bad_frame it starts with the
	// name of the offending field ("conv: required").
	Msg string `json:"msg"`
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "protocol: " + string(e.Code)
	}
	return "protocol: " + string(e.Code) + ": " + e.Msg
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &protocol.Error{Code: protocol.CodeNotMember}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the code of err: its own if err is (or wraps) an [*Error],
// "" for nil and [CodeInternal] for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeInternal
}

// CheckBody returns a [CodeTooBig] error when body is longer than max bytes
// (max <= 0 means [DefaultMaxBody]). The edge calls it after [Decode] for
// send, and on the REST send.
func CheckBody(body string, max int) error {
	if max <= 0 {
		max = DefaultMaxBody
	}
	if len(body) <= max {
		return nil
	}
	return &Error{Code: CodeTooBig, Msg: "body: " + strconv.Itoa(len(body)) + " bytes, max " + strconv.Itoa(max)}
}

func badFrame(id, msg string) *Error { return &Error{ID: id, Code: CodeBadFrame, Msg: msg} }
