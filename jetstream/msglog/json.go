package msglog

import (
	"strconv"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/jsonstr"
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

// appendString appends s as json.Marshal writes it (HTML escaped).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s, true) }
