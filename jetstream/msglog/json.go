package msglog

import (
	"strconv"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
)

// Hand-written encoders for the two fixed documents of the append path,
// byte for byte what encoding/json writes (FuzzAppendMessage checks), at a
// fraction of the cost of its reflection.

// appendMessage appends the JSON of m as json.Marshal writes it.
func appendMessage(b []byte, m *natter.Message) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"conv":`...)
	b = appendString(b, m.Conv)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, `,"from":`...)
	b = appendString(b, m.From)
	b = append(b, `,"cmid":`...)
	b = appendString(b, m.Cmid)
	if m.Type != "" {
		b = append(b, `,"type":`...)
		b = appendString(b, m.Type)
	}
	b = append(b, `,"body":`...)
	b = appendString(b, m.Body)
	if m.Ref != "" {
		b = append(b, `,"ref":`...)
		b = appendString(b, m.Ref)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	return append(b, '}')
}

// messageSize is a capacity for appendMessage that escapes rarely outgrow.
func messageSize(m *natter.Message) int {
	return len(`{"id":"","conv":"","seq":,"from":"","cmid":"","type":"","body":"","ref":"","ts":}`) + 40 +
		len(m.ID) + len(m.Conv) + len(m.From) + len(m.Cmid) + len(m.Type) + len(m.Body) + len(m.Ref)
}

// appendAck appends the JSON of a as json.Marshal writes it.
func appendAck(b []byte, a natter.Ack) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"conv":`...)
	b = appendString(b, a.Conv)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, a.Seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, a.TS, 10)
	if a.Dup {
		b = append(b, `,"dup":true`...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does:
// invalid UTF-8 becomes U+FFFD, and <, >, &, U+2028 and U+2029 are escaped.
func appendString(b []byte, s string) []byte {
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
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
