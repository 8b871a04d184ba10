package client

import (
	"errors"

	"github.com/natter-im/natter/edge/protocol"
)

var (
	// ErrClosed is returned by calls on a client that was closed.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost is returned by a call that is not safe to repeat
	// (creating a group) when the connection failed after the request was
	// written: it may or may not have taken effect. Check
	// [Client.Conversations] before trying again.
	ErrConnectionLost = errors.New("client: connection lost with the request in flight")
	// ErrTimeout is returned when no reply came within Config.RequestTimeout.
	ErrTimeout = errors.New("client: request timed out")

	// errDisconnected is internal: the connection ended before the reply.
	errDisconnected = errors.New("client: disconnected")
)

// Error is an error the server answered (an err frame), or a request the
// client refused to send because the server would refuse it. It unwraps to
// the matching [*protocol.Error], so that protocol.CodeOf(err) and
// errors.Is(err, &protocol.Error{Code: protocol.CodeNotMember}) work.
type Error struct {
	// Op is the request's op (protocol.OpSend, ...), or "connect".
	Op string
	// Code is the stable error code.
	Code protocol.Code
	// Msg is the server's message; for bad_frame it names the field.
	Msg string
}

func (e *Error) Error() string {
	s := "client: " + e.Op + ": " + string(e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns the error as a [*protocol.Error].
func (e *Error) Unwrap() error { return &protocol.Error{Code: e.Code, Msg: e.Msg} }

// Is reports whether target is an *Error with the same code (its Op and Msg
// are not compared).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Retryable reports whether the same request may succeed after a back-off.
func (e *Error) Retryable() bool { return e.Code.Retryable() }

func protoErr(op string, err error) *Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return &Error{Op: op, Code: pe.Code, Msg: pe.Msg}
	}
	return &Error{Op: op, Code: protocol.CodeInternal, Msg: err.Error()}
}
