package client

import (
	"strconv"
	"unicode/utf8"

	"github.com/natter-im/natter/edge/protocol"
)

// encodeRequest encodes req as a frame: a plain send (no mentions, no
// attachments; the frame of every message the relay sends) by hand, the
// bytes encoding/json would make of it, anything else with
// [protocol.Request.Encode]. The caller has validated a send.
func encodeRequest(req *protocol.Request) ([]byte, error) {
	if req.Op != protocol.OpSend || req.Mentions != nil || req.Attachments != nil || !plainSend(req) {
		return req.Encode()
	}
	b := make([]byte, 0, 64+len(req.Conv)+len(req.Cmid)+len(req.Body)+len(req.Type)+len(req.ReplyTo)+len(req.Thread))
	b = append(b, `{"op":"send","id":`...)
	b = appendJSONString(b, req.ID)
	b = appendField(b, `,"conv":`, req.Conv)
	b = appendField(b, `,"cmid":`, req.Cmid)
	b = appendField(b, `,"body":`, req.Body)
	b = appendField(b, `,"type":`, req.Type)
	if req.First {
		b = append(b, `,"first":true`...)
	}
	b = appendField(b, `,"reply_to":`, req.ReplyTo)
	b = appendField(b, `,"thread":`, req.Thread)
	return append(b, '}'), nil
}

// plainSend reports whether req has no field besides those encodeRequest
// writes (a send built by Send or SendAll never has).
func plainSend(r *protocol.Request) bool {
	return r.Token == "" && r.Device == "" && r.From == "" && r.Seq == 0 && r.Cursors == nil &&
		r.Limit == 0 && r.Before == nil && r.After == nil && r.PageSize == 0 && r.Page == "" && r.Kind == "" &&
		r.With == "" && r.Name == "" && r.Members == nil && r.Users == nil && !r.Hidden && r.State == "" &&
		r.AfterUser == "" && r.Ref == "" && r.Root == "" && r.Emoji == "" && !r.Remove && r.Description == nil &&
		r.AvatarURL == nil && r.Announce == nil && r.To == "" && r.DurationMS == 0 && r.MutedUntil == nil &&
		r.Pinned == nil && r.Archived == nil && r.Cleared == nil && r.Provider == "" && r.Subscription == nil
}

// appendField appends key and s unless s is empty (omitempty).
func appendField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML characters too; invalid UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = strconv.AppendInt(b, int64(r&0xf), 16)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
