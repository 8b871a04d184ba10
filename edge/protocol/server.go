package protocol

import (
	"encoding/json"
	"errors"

	"github.com/natter-im/natter"
)

// ServerFrame is one decoded server frame, for clients. T says which of the
// other fields is set:
//
//	res    ID, Data (the reply, to decode into the op's result type)
//	err    Err (Err.ID is "" when the server could not read the request id)
//	msg    Message
//	hello  Hello
//	bye    Bye
//
// Frames of a type this version does not know have only T set; clients
// ignore them.
type ServerFrame struct {
	T       string
	ID      string
	Data    json.RawMessage
	Err     *Error
	Message *natter.Message
	Hello   *HelloFrame
	Bye     *ByeFrame
}

// HelloFrame is the content of a hello frame.
type HelloFrame struct {
	// V is the protocol version ([Version]).
	V int `json:"v"`
	// User is the authenticated user (the token's subject).
	User string `json:"user"`
	// Device is the device id in use ([DefaultDevice] when none was given).
	Device string `json:"device,omitempty"`
	// Session identifies this connection in server logs.
	Session string `json:"session"`
	// PingMS is the server's ping interval in milliseconds.
	PingMS int64 `json:"ping_ms"`
	// MaxBody is the largest message body in bytes.
	MaxBody int `json:"max_body"`
}

// ByeFrame is the content of a bye frame.
type ByeFrame struct {
	// Code is the WebSocket close code that follows (CloseGoingAway, ...).
	Code int `json:"code"`
	// Reason is a human-readable reason.
	Reason string `json:"reason"`
	// Reconnect says whether the client should connect again.
	Reconnect bool `json:"reconnect"`
}

// serverWire is the union of all server frame fields. "code" and "msg" mean
// different things in different frames (err: string code and text; bye:
// close code; msg: the message), so they are decoded once t is known.
type serverWire struct {
	T    string          `json:"t"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
	Code json.RawMessage `json:"code"`
	Msg  json.RawMessage `json:"msg"`
	HelloFrame
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`
}

// DecodeServer parses one server frame. Errors are [*Error] with
// [CodeBadJSON] or [CodeBadFrame]; an err frame is not an error here but a
// frame with Err set.
func DecodeServer(data []byte) (*ServerFrame, error) {
	if !isObject(data) {
		return nil, &Error{Code: CodeBadJSON, Msg: "server frame must be one JSON object"}
	}
	var w serverWire
	if err := json.Unmarshal(data, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && w.T != "" && !knownFrame(w.T) {
			return &ServerFrame{T: w.T}, nil
		}
		if typeErr != nil {
			return nil, &Error{Code: CodeBadFrame, Msg: typeErr.Field + ": wrong type in " + w.T + " frame"}
		}
		return nil, &Error{Code: CodeBadJSON, Msg: "invalid JSON in server frame"}
	}
	f := &ServerFrame{T: w.T}
	switch w.T {
	case FrameRes:
		if w.ID == "" {
			return nil, &Error{Code: CodeBadFrame, Msg: "id: required in res frame"}
		}
		f.ID, f.Data = w.ID, w.Data
		if len(f.Data) == 0 {
			f.Data = emptyObject
		}
	case FrameErr:
		e := &Error{ID: w.ID}
		if err := json.Unmarshal(w.Code, &e.Code); err != nil || e.Code == "" {
			return nil, &Error{Code: CodeBadFrame, Msg: "code: required string in err frame"}
		}
		if len(w.Msg) != 0 && json.Unmarshal(w.Msg, &e.Msg) != nil {
			return nil, &Error{Code: CodeBadFrame, Msg: "msg: must be a string in err frame"}
		}
		f.ID, f.Err = w.ID, e
	case FrameMsg:
		if !isObject(w.Msg) {
			return nil, &Error{Code: CodeBadFrame, Msg: "msg: required object in msg frame"}
		}
		m := new(natter.Message)
		if err := json.Unmarshal(w.Msg, m); err != nil {
			return nil, &Error{Code: CodeBadFrame, Msg: "msg: not a message"}
		}
		f.Message = m
	case FrameHello:
		if w.V != Version {
			return nil, &Error{Code: CodeBadVersion, Msg: "hello: server speaks another protocol version"}
		}
		h := w.HelloFrame
		f.Hello = &h
	case FrameBye:
		b := &ByeFrame{Reason: w.Reason, Reconnect: w.Reconnect}
		if err := json.Unmarshal(w.Code, &b.Code); err != nil {
			return nil, &Error{Code: CodeBadFrame, Msg: "code: required integer in bye frame"}
		}
		f.Bye = b
	case "":
		return nil, &Error{Code: CodeBadFrame, Msg: "t: required in server frame"}
	}
	return f, nil
}

func knownFrame(t string) bool {
	switch t {
	case FrameRes, FrameErr, FrameMsg, FrameHello, FrameBye:
		return true
	}
	return false
}
