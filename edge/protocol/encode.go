package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/jsonstr"
)

// Server frame encoders. Each returns a new slice the caller owns; the edge
// writes it as one text frame.

var emptyObject = []byte("{}")

// Result is the reply to request id: {"t":"res","id":id,"data":data}. data
// is encoded with encoding/json, except a [HistoryPage], whose entries are
// embedded as they are; nil encodes as {}. If data cannot be encoded,
// Result returns an internal err frame instead.
func Result(id string, data any) []byte {
	switch d := data.(type) {
	case nil:
		return ResultRaw(id, nil)
	case natter.Ack:
		return resultAck(id, &d)
	case HistoryPage:
		// Its entries are JSON already: embed them without a copy through
		// encoding/json (which would check and compact them again).
		b := make([]byte, 0, len(`{"t":"res","id":"","data":}`)+len(id)+8+d.size())
		b = append(b, `{"t":"res","id":`...)
		b = appendString(b, id)
		b = append(b, `,"data":`...)
		b = d.appendJSON(b)
		return append(b, '}')
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Err(id, CodeInternal, "reply could not be encoded")
	}
	return ResultRaw(id, b)
}

// ResultRaw is [Result] for data that is already JSON (for example a reply
// of the conversations service), which it embeds without re-encoding. data
// must be one JSON value; empty means {}.
func ResultRaw(id string, data []byte) []byte {
	if len(data) == 0 {
		data = emptyObject
	}
	b := make([]byte, 0, len(`{"t":"res","id":"","data":}`)+len(id)+len(data)+8)
	b = append(b, `{"t":"res","id":`...)
	b = appendString(b, id)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// Err is an error reply: {"t":"err","id":id,"code":code,"msg":msg}, without
// "id" when id is "" (the request id could not be read).
func Err(id string, code Code, msg string) []byte {
	b := make([]byte, 0, len(`{"t":"err","id":"","code":"","msg":""}`)+len(id)+len(code)+len(msg)+8)
	b = append(b, `{"t":"err"`...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	b = append(b, `,"code":`...)
	b = appendString(b, string(code))
	b = append(b, `,"msg":`...)
	b = appendString(b, msg)
	return append(b, '}')
}

// ErrFrame is the err frame for err in reply to request id. An [*Error]
// keeps its code and message (and its own ID when id is ""); any other error
// becomes [CodeInternal] with a generic message, so that internal details do
// not reach clients.
func ErrFrame(id string, err error) []byte {
	var pe *Error
	if errors.As(err, &pe) {
		if id == "" {
			id = pe.ID
		}
		return Err(id, pe.Code, pe.Msg)
	}
	return Err(id, CodeInternal, "internal error")
}

// Push is a new-message push: {"t":"msg","msg":msgJSON}. msgJSON is the
// already-encoded [natter.Message] (the log payload, or the body of a
// delivery), embedded as is: it must be one JSON object.
func Push(msgJSON []byte) []byte {
	b := make([]byte, 0, len(`{"t":"msg","msg":}`)+len(msgJSON))
	b = append(b, `{"t":"msg","msg":`...)
	b = append(b, msgJSON...)
	return append(b, '}')
}

// pushIDPrefix starts every push frame [Push] makes of a log entry (whose
// JSON starts with its id).
var pushIDPrefix = []byte(`{"t":"msg","msg":{"id":"`)

// PushID returns the message id of a push frame made by [Push] of a log
// entry, without decoding it: false for any other frame (or an id with an
// escape, which message ids never have). The id aliases frame.
func PushID(frame []byte) ([]byte, bool) {
	if !bytes.HasPrefix(frame, pushIDPrefix) {
		return nil, false
	}
	rest := frame[len(pushIDPrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
}

// Hello is the frame that opens an authenticated connection:
// {"t":"hello","v":1,"user":..,"device":..,"session":..,"ping_ms":..,"max_body":..}.
// A zero h.V is sent as [Version].
func Hello(h HelloFrame) []byte {
	if h.V == 0 {
		h.V = Version
	}
	b := make([]byte, 0, 96+len(h.User)+len(h.Device)+len(h.Session))
	b = append(b, `{"t":"hello","v":`...)
	b = strconv.AppendInt(b, int64(h.V), 10)
	b = append(b, `,"user":`...)
	b = appendString(b, h.User)
	if h.Device != "" {
		b = append(b, `,"device":`...)
		b = appendString(b, h.Device)
	}
	b = append(b, `,"session":`...)
	b = appendString(b, h.Session)
	b = append(b, `,"ping_ms":`...)
	b = strconv.AppendInt(b, h.PingMS, 10)
	b = append(b, `,"max_body":`...)
	b = strconv.AppendInt(b, int64(h.MaxBody), 10)
	return append(b, '}')
}

// Bye is sent just before the server closes the connection with the
// WebSocket close code code: {"t":"bye","code":code,"reason":..,"reconnect":..}.
// reconnect tells the client whether to connect again (with back-off).
func Bye(code int, reason string, reconnect bool) []byte {
	b := make([]byte, 0, 64+len(reason))
	b = append(b, `{"t":"bye","code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `,"reconnect":`...)
	b = strconv.AppendBool(b, reconnect)
	return append(b, '}')
}

// ConvPush is a conv push: {"t":"conv","conv":..,"event":..} and the
// fields of f that are set, in the order of [ConvFrame].
func ConvPush(f ConvFrame) []byte {
	n := 128 + len(f.Conv) + len(f.Event) + len(f.By) + 2*len(f.Name)
	for _, u := range f.Users {
		n += len(u) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"t":"conv","conv":`...)
	b = appendString(b, f.Conv)
	b = append(b, `,"event":`...)
	b = appendString(b, f.Event)
	if f.Rev != 0 {
		b = append(b, `,"rev":`...)
		b = strconv.AppendInt(b, f.Rev, 10)
	}
	if f.By != "" {
		b = append(b, `,"by":`...)
		b = appendString(b, f.By)
	}
	if f.Created {
		b = append(b, `,"created":true`...)
	}
	if f.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, f.Name)
	}
	if len(f.Users) > 0 {
		b = append(b, `,"users":[`...)
		for i, u := range f.Users {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u)
		}
		b = append(b, ']')
	}
	if f.N != 0 {
		b = append(b, `,"n":`...)
		b = strconv.AppendInt(b, int64(f.N), 10)
	}
	if f.MemberCount != 0 {
		b = append(b, `,"member_count":`...)
		b = strconv.AppendInt(b, int64(f.MemberCount), 10)
	}
	return appendConvModeration(b, f)
}

// appendConvModeration appends the moderation fields of a conv push (roles,
// muted, updated) and the closing brace.
func appendConvModeration(b []byte, f ConvFrame) []byte {
	if f.Owner != "" {
		b = append(b, `,"owner":`...)
		b = appendString(b, f.Owner)
	}
	if len(f.Admins) > 0 {
		b = append(b, `,"admins":[`...)
		for i, u := range f.Admins {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u)
		}
		b = append(b, ']')
	}
	if f.Until != 0 {
		b = append(b, `,"until":`...)
		b = strconv.AppendInt(b, f.Until, 10)
	}
	if f.Description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, f.Description)
	}
	if f.AvatarURL != "" {
		b = append(b, `,"avatar_url":`...)
		b = appendString(b, f.AvatarURL)
	}
	if f.Announce {
		b = append(b, `,"announce":true`...)
	}
	if st := f.Settings; st != nil {
		b = append(b, `,"settings":{`...)
		n := len(b)
		field := func(name string) {
			if len(b) > n {
				b = append(b, ',')
			}
			b = append(b, name...)
		}
		if st.MutedUntil != 0 {
			field(`"muted_until":`)
			b = strconv.AppendInt(b, st.MutedUntil, 10)
		}
		if st.Pinned {
			field(`"pinned":true`)
		}
		if st.Archived {
			field(`"archived":true`)
		}
		if st.Cleared != 0 {
			field(`"cleared":`)
			b = strconv.AppendUint(b, st.Cleared, 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// PresencePush is a presence push:
// {"t":"presence","user":..,"online":..,"last_seen":..} (last_seen only
// when not 0).
func PresencePush(st PresenceState) []byte {
	b := make([]byte, 0, 64+len(st.User))
	b = append(b, `{"t":"presence","user":`...)
	b = appendString(b, st.User)
	b = append(b, `,"online":`...)
	b = strconv.AppendBool(b, st.Online)
	if st.LastSeen != 0 {
		b = append(b, `,"last_seen":`...)
		b = strconv.AppendInt(b, st.LastSeen, 10)
	}
	return append(b, '}')
}

// TypingPush is a typing push:
// {"t":"typing","conv":..,"user":..,"state":..,"expires_ms":..}
// (expires_ms only when not 0).
func TypingPush(f TypingFrame) []byte {
	b := make([]byte, 0, 80+len(f.Conv)+len(f.User))
	b = append(b, `{"t":"typing","conv":`...)
	b = appendString(b, f.Conv)
	b = append(b, `,"user":`...)
	b = appendString(b, f.User)
	b = append(b, `,"state":`...)
	b = appendString(b, f.State)
	if f.ExpiresMS != 0 {
		b = append(b, `,"expires_ms":`...)
		b = strconv.AppendInt(b, f.ExpiresMS, 10)
	}
	return append(b, '}')
}

// ReactionPush is a reaction push: {"t":"reaction","conv":..,"ref":..,
// "seq":..,"user":..,"emoji":..,"removed":true,"count":..} (removed only
// when set).
func ReactionPush(f ReactionFrame) []byte {
	b := make([]byte, 0, 120+len(f.Conv)+len(f.Ref)+len(f.User)+len(f.Emoji))
	b = append(b, `{"t":"reaction","conv":`...)
	b = appendString(b, f.Conv)
	b = append(b, `,"ref":`...)
	b = appendString(b, f.Ref)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"user":`...)
	b = appendString(b, f.User)
	b = append(b, `,"emoji":`...)
	b = appendString(b, f.Emoji)
	if f.Removed {
		b = append(b, `,"removed":true`...)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(f.Count), 10)
	return append(b, '}')
}

// ReadPush is a read push: {"t":"read","conv":..,"user":..,"seq":..}.
func ReadPush(f ReadFrame) []byte {
	b := make([]byte, 0, 64+len(f.Conv)+len(f.User))
	b = append(b, `{"t":"read","conv":`...)
	b = appendString(b, f.Conv)
	b = append(b, `,"user":`...)
	b = appendString(b, f.User)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	return append(b, '}')
}

// appendString appends s as a JSON string, as encoding/json writes it
// with SetEscapeHTML(false): <, > and & stay as they are.
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, false) }
