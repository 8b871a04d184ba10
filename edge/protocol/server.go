package protocol

import (
	"bytes"
	"encoding/binary"
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
//	conv   Conv
//	presence  Presence
//	typing    Typing
//	read      Read
//	reaction  Reaction
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
	Conv    *ConvFrame
	// Presence is a presence push's state.
	Presence *PresenceState
	// Typing is a typing push's content.
	Typing *TypingFrame
	// Read is a read push's content.
	Read *ReadFrame
	// Reaction is a reaction push's content.
	Reaction *ReactionFrame
}

// ReactionFrame is the content of a reaction push: User added (or, with
// Removed, took back) the reaction Emoji to the message Ref (seq Seq) of
// Conv, which now has Count reactions with it.
type ReactionFrame struct {
	Conv    string `json:"conv"`
	Ref     string `json:"ref"`
	Seq     uint64 `json:"seq"`
	User    string `json:"user"`
	Emoji   string `json:"emoji"`
	Removed bool   `json:"removed,omitempty"`
	Count   int    `json:"count"`
}

// ReadFrame is the content of a read push: User read Conv up to Seq. It
// comes for the user's own reads (from any device, the sending one
// included) and, in direct conversations and groups of at most
// [MaxReceiptMembers], for the other members' reads.
type ReadFrame struct {
	Conv string `json:"conv"`
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// TypingFrame is the content of a typing push: a member of a conversation
// started or stopped typing. Never stored: a client that was not connected
// never sees it.
type TypingFrame struct {
	Conv string `json:"conv"`
	User string `json:"user"`
	// State is [TypingStarted] or [TypingStopped].
	State string `json:"state"`
	// ExpiresMS: a started state ends by itself this many milliseconds
	// after the push unless renewed (0 with stopped).
	ExpiresMS int64 `json:"expires_ms,omitempty"`
}

// ConvFrame is the content of a conv push: one of the user's conversations
// changed (docs/protocol.md, "conv").
type ConvFrame struct {
	// Conv is the conversation id.
	Conv string `json:"conv"`
	// Event is [ConvAdded], [ConvRemoved], [ConvMembersAdded],
	// [ConvMembersRemoved], [ConvRenamed], [ConvRoles], [ConvMuted] or
	// [ConvUpdated]; clients ignore other values.
	Event string `json:"event"`
	// Rev is the conversation's rev after the change (0, absent, for a new
	// conversation and from older servers).
	Rev int64 `json:"rev,omitempty"`
	// By is the user or service that made the change (absent from older
	// servers).
	By string `json:"by,omitempty"`
	// Created: an added event for a conversation that was just created.
	Created bool `json:"created,omitempty"`
	// Name is a renamed group's new name.
	Name string `json:"name,omitempty"`
	// Users are the users added or removed (members_added,
	// members_removed), when at most [MaxConvEventUsers]; N is how many.
	Users []string `json:"users,omitempty"`
	N     int      `json:"n,omitempty"`
	// MemberCount is the group's member count after the change
	// (members_added, members_removed).
	MemberCount int `json:"member_count,omitempty"`
	// Owner and Admins are the group's roles after a roles change (the
	// owner always, admins absent when none).
	Owner  string   `json:"owner,omitempty"`
	Admins []string `json:"admins,omitempty"`
	// Until is when the mute of Users ends (muted; Unix ms), 0 (absent)
	// when they were unmuted.
	Until int64 `json:"until,omitempty"`
	// Description, AvatarURL and Announce are the group's profile after
	// an updated change (absent: empty, off).
	Description string `json:"description,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
	Announce    bool   `json:"announce,omitempty"`
	// Settings are the user's settings after a settings change.
	Settings *natter.ConvSettings `json:"settings,omitempty"`
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
	Conv      string `json:"conv"`
	Event     string `json:"event"`
	Online    bool   `json:"online"`
	LastSeen  int64  `json:"last_seen"`
	State     string `json:"state"`
	ExpiresMS int64  `json:"expires_ms"`
	Seq       uint64 `json:"seq"`
	// reaction pushes
	Ref     string `json:"ref"`
	Emoji   string `json:"emoji"`
	Removed bool   `json:"removed"`
	Count   int    `json:"count"`
	// conv pushes
	Rev         int64                `json:"rev"`
	By          string               `json:"by"`
	Created     bool                 `json:"created"`
	Name        string               `json:"name"`
	Users       []string             `json:"users"`
	N           int                  `json:"n"`
	MemberCount int                  `json:"member_count"`
	Owner       string               `json:"owner"`
	Admins      []string             `json:"admins"`
	Until       int64                `json:"until"`
	Description string               `json:"description"`
	AvatarURL   string               `json:"avatar_url"`
	Announce    bool                 `json:"announce"`
	Settings    *natter.ConvSettings `json:"settings"`
}

// DecodeServer parses one server frame. Errors are [*Error] with
// [CodeBadJSON] or [CodeBadFrame]; an err frame is not an error here but a
// frame with Err set.
func DecodeServer(data []byte) (*ServerFrame, error) {
	if bytes.HasPrefix(data, pushPrefix) {
		if m := new(natter.Message); DecodePush(data, m) {
			return &ServerFrame{T: FrameMsg, Message: m}, nil
		}
	} else if f, ok := decodeRes(data); ok {
		return f, nil
	}
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
	case FrameConv:
		if w.Conv == "" || w.Event == "" {
			return nil, &Error{Code: CodeBadFrame, Msg: "conv, event: required strings in conv frame"}
		}
		f.Conv = &ConvFrame{Conv: w.Conv, Event: w.Event, Rev: w.Rev, By: w.By, Created: w.Created,
			Name: w.Name, Users: w.Users, N: w.N, MemberCount: w.MemberCount, Owner: w.Owner, Admins: w.Admins,
			Until: w.Until, Description: w.Description, AvatarURL: w.AvatarURL, Announce: w.Announce, Settings: w.Settings}
	case FramePresence:
		if w.User == "" {
			return nil, &Error{Code: CodeBadFrame, Msg: "user: required string in presence frame"}
		}
		f.Presence = &PresenceState{User: w.User, Online: w.Online, LastSeen: w.LastSeen}
	case FrameTyping:
		if w.Conv == "" || w.User == "" || w.State == "" {
			return nil, &Error{Code: CodeBadFrame, Msg: "conv, user, state: required strings in typing frame"}
		}
		f.Typing = &TypingFrame{Conv: w.Conv, User: w.User, State: w.State, ExpiresMS: w.ExpiresMS}
	case FrameRead:
		if w.Conv == "" || w.User == "" || w.Seq == 0 {
			return nil, &Error{Code: CodeBadFrame, Msg: "conv, user: required strings and seq >= 1 in read frame"}
		}
		f.Read = &ReadFrame{Conv: w.Conv, User: w.User, Seq: w.Seq}
	case FrameReaction:
		if w.Conv == "" || w.Ref == "" || w.User == "" || w.Emoji == "" || w.Seq == 0 {
			return nil, &Error{Code: CodeBadFrame, Msg: "conv, ref, user, emoji: required strings and seq >= 1 in reaction frame"}
		}
		f.Reaction = &ReactionFrame{Conv: w.Conv, Ref: w.Ref, Seq: w.Seq, User: w.User, Emoji: w.Emoji, Removed: w.Removed, Count: w.Count}
	case "":
		return nil, &Error{Code: CodeBadFrame, Msg: "t: required in server frame"}
	}
	return f, nil
}

func knownFrame(t string) bool {
	switch t {
	case FrameRes, FrameErr, FrameMsg, FrameHello, FrameBye, FrameConv, FramePresence, FrameTyping, FrameRead, FrameReaction:
		return true
	}
	return false
}

// pushPrefix starts every push frame the edge writes ([Push]).
var pushPrefix = []byte(`{"t":"msg","msg":`)

// DecodePush is the fast path of [DecodeServer] for the frame a client gets
// most: a msg push as the edge writes it, {"t":"msg","msg":{...}} with the
// message's fields named exactly as its JSON tags (in any order, white
// space allowed), holding strings and integers. It decodes such a frame
// into m (overwritten) and reports true, with what DecodeServer would give
// as the frame's Message; for any other frame, valid or not, it reports
// false and leaves m in an unspecified state: decode it with DecodeServer.
// The result does not alias data.
func DecodePush(data []byte, m *natter.Message) bool {
	if !bytes.HasPrefix(data, pushPrefix) {
		return false
	}
	d := decoder{data: data, pos: len(pushPrefix)}
	d.ws()
	if d.peek() != '{' {
		return false
	}
	d.pos++
	// The strings are unescaped one after the other into buf and made into
	// one Go string at the end: one allocation per message.
	var scratch [512]byte
	buf := scratch[:0]
	// The span in buf of each string field (absent: empty), as uint32s:
	// a frame is far below 4 GiB, and the array stays small to clear.
	var spans [numStrFields][2]uint32
	var seq uint64
	var ts int64
	var ment [][2]uint32 // the mentions' spans in buf
	hasMent := false
	d.ws()
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if d.peek() != '"' {
				return false
			}
			key, err := d.fastStr()
			if err != nil {
				return false
			}
			f := pushField(key)
			if f < 0 || d.expect(':') != nil {
				return false
			}
			d.ws()
			switch f {
			case fieldMentions:
				if d.peek() != '[' {
					return false
				}
				d.pos++
				d.ws()
				ment, hasMent = ment[:0], true
				if d.peek() == ']' {
					d.pos++
					break
				}
				for {
					if d.peek() != '"' {
						return false
					}
					v, err := d.fastStr()
					if err != nil {
						return false
					}
					ment = append(ment, [2]uint32{uint32(len(buf)), uint32(len(buf) + len(v))})
					buf = append(buf, v...)
					d.ws()
					c := d.peek()
					d.pos++
					if c == ']' {
						break
					}
					if c != ',' {
						return false
					}
					d.ws()
				}
			case fieldSeq:
				v, ok := d.uint()
				if !ok {
					return false
				}
				seq = v
			case fieldTS:
				v, ok := d.int()
				if !ok {
					return false
				}
				ts = v
			default:
				if d.peek() != '"' {
					return false
				}
				v, err := d.fastStr()
				if err != nil {
					return false
				}
				spans[f] = [2]uint32{uint32(len(buf)), uint32(len(buf) + len(v))}
				buf = append(buf, v...)
			}
			d.ws()
			c := d.peek()
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return false
			}
			d.ws()
		}
	}
	d.ws()
	if d.peek() != '}' {
		return false
	}
	d.pos++
	d.ws()
	if d.pos != len(data) {
		return false
	}
	// m is cleared in place and its fields set one by one: a composite
	// literal with calls in it, assigned through m, is built on the stack
	// and copied (the Message is ~250 bytes).
	all := string(buf)
	str := func(f int) string { return all[spans[f][0]:spans[f][1]] }
	*m = natter.Message{}
	m.ID, m.Conv, m.Seq, m.From, m.Cmid = str(fieldID), str(fieldConv), seq, str(fieldFrom), str(fieldCmid)
	m.Type, m.Body, m.Ref, m.ReplyTo, m.Thread = str(fieldType), str(fieldBody), str(fieldRef), str(fieldReplyTo), str(fieldThread)
	m.TS = ts
	if hasMent {
		m.Mentions = make([]string, len(ment))
		for i, sp := range ment {
			m.Mentions[i] = all[sp[0]:sp[1]]
		}
	}
	return true
}

// The fields of a pushed message, by their JSON names.
const (
	fieldID = iota
	fieldConv
	fieldFrom
	fieldCmid
	fieldType
	fieldBody
	fieldRef
	fieldReplyTo
	fieldThread
	numStrFields  // the string fields come first
	fieldMentions = iota - 1
	fieldSeq
	fieldTS
	numPushFields
)

// pushField is the field named key exactly, -1 for any other name
// (encoding/json would also match names that differ in case: those frames
// take the general path).
func pushField(key []byte) int {
	switch string(key) {
	case "id":
		return fieldID
	case "conv":
		return fieldConv
	case "seq":
		return fieldSeq
	case "from":
		return fieldFrom
	case "cmid":
		return fieldCmid
	case "type":
		return fieldType
	case "body":
		return fieldBody
	case "ref":
		return fieldRef
	case "reply_to":
		return fieldReplyTo
	case "thread":
		return fieldThread
	case "mentions":
		return fieldMentions
	case "ts":
		return fieldTS
	}
	return -1
}

// uint reads a JSON integer that fits a uint64 (no sign, fraction or
// exponent), as encoding/json accepts for a uint64 field.
func (d *decoder) uint() (uint64, bool) {
	num, isInt, err := d.number()
	if err != nil || !isInt || num[0] == '-' {
		return 0, false
	}
	var v uint64
	for _, c := range num {
		x := uint64(c - '0')
		if v > (1<<64-1-x)/10 {
			return 0, false
		}
		v = v*10 + x
	}
	return v, true
}

// int reads a JSON integer that fits an int64, as encoding/json accepts
// for an int64 field.
func (d *decoder) int() (int64, bool) {
	num, isInt, err := d.number()
	if err != nil || !isInt {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	var v uint64
	for _, c := range num {
		x := uint64(c - '0')
		if v > (1<<63-x)/10 {
			return 0, false
		}
		v = v*10 + x
	}
	switch {
	case neg:
		return -int64(v), true // -(1<<63) wraps to itself
	case v > 1<<63-1:
		return 0, false
	}
	return int64(v), true
}

// fastStr is [decoder.str] with a quick scan, 8 bytes at a time, for the
// common string: printable ASCII without escapes. Any other string is read
// by str.
func (d *decoder) fastStr() ([]byte, error) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	data := d.data
	start := d.pos + 1
	i := start
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		q := x ^ ('"' * ones)
		bs := x ^ ('\\' * ones)
		// A byte that is '"', '\\', below 0x20 or at least 0x80 sets the
		// high bit of its lane in one of these (exactly: no false
		// negatives, and a false positive only costs the byte loop below).
		if ((q-ones)&^q|(bs-ones)&^bs|(x-0x20*ones)&^x|x)&highs != 0 {
			break
		}
	}
	for ; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return data[start:i], nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			return d.str()
		}
	}
	return d.str()
}
