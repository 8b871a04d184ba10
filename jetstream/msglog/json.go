package msglog

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

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
	if m.ReplyTo != "" {
		b = append(b, `,"reply_to":`...)
		b = appendString(b, m.ReplyTo)
	}
	if m.Thread != "" {
		b = append(b, `,"thread":`...)
		b = appendString(b, m.Thread)
	}
	if len(m.Mentions) > 0 {
		b = append(b, `,"mentions":[`...)
		for i, u := range m.Mentions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u)
		}
		b = append(b, ']')
	}
	if len(m.Attachments) > 0 {
		// Rare and small: encoding/json writes them (an Attachment has no
		// field it could fail on).
		a, _ := json.Marshal(m.Attachments)
		b = append(b, `,"attachments":`...)
		b = append(b, a...)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	return append(b, '}')
}

// AppendJSON appends the JSON of m byte for byte as json.Marshal writes it
// (the log entry's payload), without reflection: for the workers that
// embed an entry in a document of their own (the events role's envelope).
func AppendJSON(b []byte, m *natter.Message) []byte {
	return appendMessage(b, m)
}

// JSONSize is a capacity for [AppendJSON] that escapes rarely outgrow.
func JSONSize(m *natter.Message) int { return messageSize(m) }

// messageSize is a capacity for appendMessage that escapes rarely outgrow.
func messageSize(m *natter.Message) int {
	return len(`{"id":"","conv":"","seq":,"from":"","cmid":"","type":"","body":"","ref":"","ts":}`) + 40 +
		len(m.ID) + len(m.Conv) + len(m.From) + len(m.Cmid) + len(m.Type) + len(m.Body) + len(m.Ref) + len(`,"reply_to":"","thread":""`) + len(m.ReplyTo) + len(m.Thread) + mentionsSize(m.Mentions) + 160*len(m.Attachments)
}

// mentionsSize is a capacity for the mentions of appendMessage.
func mentionsSize(ms []string) int {
	if len(ms) == 0 {
		return 0
	}
	n := len(`,"mentions":[]`)
	for _, u := range ms {
		n += len(u) + 3
	}
	return n
}

// appendString appends s as json.Marshal writes it (HTML escaped).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s, true) }

// parseMessage reads what appendMessage writes, without reflection: exactly
// that layout, with no escape in any string. Anything else (an escape, other
// keys or key order, white space, a number encoding/json would refuse)
// gives ok false, and Decode hands those bytes to encoding/json. For what it
// accepts it returns what json.Unmarshal returns (FuzzParseMessage checks).
// The strings share one allocation.
func parseMessage(data []byte) (m natter.Message, ok bool) {
	p := msgParser{s: string(data)}
	ok = p.key(`{"id":`) && p.str(&m.ID) &&
		p.key(`,"conv":`) && p.str(&m.Conv) &&
		p.key(`,"seq":`) && p.uint(&m.Seq) &&
		p.key(`,"from":`) && p.str(&m.From) &&
		p.key(`,"cmid":`) && p.str(&m.Cmid) &&
		(!p.key(`,"type":`) || p.str(&m.Type)) &&
		p.key(`,"body":`) && p.str(&m.Body) &&
		(!p.key(`,"ref":`) || p.str(&m.Ref)) &&
		(!p.key(`,"reply_to":`) || p.str(&m.ReplyTo)) &&
		(!p.key(`,"thread":`) || p.str(&m.Thread)) &&
		(!p.key(`,"mentions":[`) || p.strs(&m.Mentions)) &&
		p.key(`,"ts":`) && p.int(&m.TS) &&
		p.key(`}`) && p.i == len(p.s)
	// A key that matched but whose value did not parse leaves ok false
	// through p.bad.
	if !ok || p.bad {
		return natter.Message{}, false
	}
	return m, true
}

type msgParser struct {
	s   string
	i   int
	bad bool
}

// key consumes k when it comes next.
func (p *msgParser) key(k string) bool {
	if p.bad || !strings.HasPrefix(p.s[p.i:], k) {
		return false
	}
	p.i += len(k)
	return true
}

// strs reads the rest of a non-empty list of strings (after its "["), as
// str reads each.
func (p *msgParser) strs(v *[]string) bool {
	for {
		var s string
		if !p.str(&s) {
			p.bad = true
			return false
		}
		*v = append(*v, s)
		if p.key(`]`) {
			return true
		}
		if !p.key(`,`) {
			p.bad = true
			return false
		}
	}
}

// str reads a string with no escape and no control character, in valid
// UTF-8 (encoding/json would change or refuse anything else).
func (p *msgParser) str(v *string) bool {
	s := p.s[p.i:]
	if len(s) == 0 || s[0] != '"' {
		p.bad = true
		return false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		p.bad = true
		return false
	}
	body := s[1 : 1+end]
	for j := 0; j < len(body); j++ {
		if c := body[j]; c < 0x20 || c == '\\' {
			p.bad = true
			return false
		}
	}
	if !utf8.ValidString(body) {
		p.bad = true
		return false
	}
	*v = body
	p.i += end + 2
	return true
}

// digits returns the run of digits at p.i, refusing an empty run and a
// leading zero (JSON has none).
func (p *msgParser) digits() (string, bool) {
	s := p.s[p.i:]
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || (n > 1 && s[0] == '0') {
		p.bad = true
		return "", false
	}
	p.i += n
	return s[:n], true
}

func (p *msgParser) uint(v *uint64) bool {
	d, ok := p.digits()
	if !ok {
		return false
	}
	n, err := strconv.ParseUint(d, 10, 64)
	if err != nil {
		p.bad = true
		return false
	}
	*v = n
	return true
}

func (p *msgParser) int(v *int64) bool {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	if _, ok := p.digits(); !ok {
		return false
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		p.bad = true
		return false
	}
	*v = n
	return true
}
