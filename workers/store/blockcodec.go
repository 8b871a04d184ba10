package store

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
	"unsafe"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/jsonstr"
)

// The block codec: how a block's BlockSize messages are held in its
// document's "c" field, one BSON string. It keeps only what differs from
// message to message; what every message of a block repeats is not written:
// the conversation (the document's conv), the seq (gap-free: the block's
// first seq plus the message's place) and the key names. Each message is
//
//	<len>:<id> <len>:<from> <len>:<cmid> <len>:<type> <len>:<body> <len>:<ref> <ts delta>;
//
// without the spaces (a reply has ">"<len>:<reply_to> and a thread reply
// "#"<len>:<thread> after its ref; a message with mentions has
// "!"<len>:<json> of them, as json.Marshal writes the list, after those;
// a message with attachments has
// "@<len>:<json>" of them, as json.Marshal writes the list, before its ts
// delta; blocks written before these fields have none): every string as its length in bytes (decimal) and a
// colon before its bytes, or for from, type and ref "^" when it is the
// previous message's (the sender of a run, "text", no ref; never for the
// body, so a run of equal bodies costs what distinct ones do), then the
// difference between its ts and the previous message's (the first
// message's: its ts), a decimal integer with an optional minus sign, and a
// semicolon. It is text (valid UTF-8 when the strings are, and the encoder
// makes them so), so the store keeps it as one string value: on the
// embedded store a binary field is kept as base64, a third larger, and this
// is about 60% of the messages' JSON before that.
// Written from the messages without encoding/json; read back into each
// message's JSON exactly as json.Marshal writes a natter.Message
// (FuzzBlockCodec checks both against encoding/json, and
// TestBlockCodecFields fails when natter.Message gains a field the codec
// does not carry).
//
// A block written before this codec holds "msgs" instead (binary: each
// message's JSON preceded by its length, a uvarint); it is read as before.

// repeatable are the fields (in codec order) written "^" when they repeat
// the previous message's: from, type, ref.
var repeatable = [6]bool{false, true, false, true, false, true}

// blockFields are the natter.Message fields the codec carries, by their
// JSON names: the ones it writes and the two it derives (conv, seq).
var blockFields = []string{"id", "conv", "seq", "from", "cmid", "type", "body", "ref", "reply_to", "thread", "mentions", "attachments", "ts"}

// encodeBlockText is the "c" of a block holding msgs (complete, checked).
func encodeBlockText(msgs []natter.Message) string {
	size := 0
	for i := range msgs {
		m := &msgs[i]
		size += len(m.ID) + len(m.From) + len(m.Cmid) + len(m.Type) + len(m.Body) + len(m.Ref) + 32
	}
	b := make([]byte, 0, size)
	var prev int64
	var last [6]string
	for i := range msgs {
		m := &msgs[i]
		for j, f := range [6]string{m.ID, m.From, m.Cmid, m.Type, m.Body, m.Ref} {
			if !utf8.ValidString(f) {
				f = validUTF8(f)
			}
			if i > 0 && repeatable[j] && f == last[j] {
				b = append(b, '^')
				continue
			}
			last[j] = f
			b = strconv.AppendInt(b, int64(len(f)), 10)
			b = append(b, ':')
			b = append(b, f...)
		}
		for _, o := range [2]struct {
			mark byte
			f    string
		}{{'>', m.ReplyTo}, {'#', m.Thread}} {
			if o.f == "" {
				continue
			}
			if !utf8.ValidString(o.f) {
				o.f = validUTF8(o.f)
			}
			b = append(b, o.mark)
			b = strconv.AppendInt(b, int64(len(o.f)), 10)
			b = append(b, ':')
			b = append(b, o.f...)
		}
		if len(m.Mentions) > 0 {
			a, _ := json.Marshal(m.Mentions)
			b = append(b, '!')
			b = strconv.AppendInt(b, int64(len(a)), 10)
			b = append(b, ':')
			b = append(b, a...)
		}
		if len(m.Attachments) > 0 {
			a, _ := json.Marshal(m.Attachments)
			b = append(b, '@')
			b = strconv.AppendInt(b, int64(len(a)), 10)
			b = append(b, ':')
			b = append(b, a...)
		}
		b = strconv.AppendInt(b, m.TS-prev, 10)
		b = append(b, ';')
		prev = m.TS
	}
	// b is not written to again: the string shares its bytes (as
	// strings.Builder's String does) instead of copying them.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// validUTF8 is s as its JSON encoding decodes (each invalid byte U+FFFD):
// what a reader of the message's JSON gets either way; the store's strings
// must be UTF-8.
func validUTF8(s string) string {
	raw, _ := json.Marshal(s)
	_ = json.Unmarshal(raw, &s)
	return s
}

// decodeBlockText returns the JSON of each message of c, the "c" of block
// k of conv, as json.Marshal writes a natter.Message; ErrBadBlock when c is
// not BlockSize messages in the codec's form.
func decodeBlockText(conv string, k uint64, c string) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, BlockSize)
	// One buffer for every message: the JSON is the stored bytes plus the
	// key names, conv, seq and ts of each, plus escapes.
	buf := make([]byte, 0, len(c)+BlockSize*(len(conv)+96))
	seq := BlockFirst(k)
	var ts int64
	var f [6]string
	for i := 0; len(c) > 0; i++ {
		for j := range f {
			if len(c) > 0 && c[0] == '^' {
				if i == 0 || !repeatable[j] {
					return nil, ErrBadBlock
				}
				c = c[1:] // f[j] stays the previous message's
				continue
			}
			var ok bool
			if f[j], c, ok = cutField(c); !ok {
				return nil, ErrBadBlock
			}
		}
		var replyTo, thread, ment, att string
		for _, o := range [2]struct {
			mark byte
			f    *string
		}{{'>', &replyTo}, {'#', &thread}} {
			if len(c) > 0 && c[0] == o.mark {
				var ok bool
				if *o.f, c, ok = cutField(c[1:]); !ok || *o.f == "" {
					return nil, ErrBadBlock
				}
			}
		}
		if len(c) > 0 && c[0] == '!' {
			var ok bool
			if ment, c, ok = cutField(c[1:]); !ok || len(ment) < 2 || ment[0] != '[' || !json.Valid([]byte(ment)) {
				return nil, ErrBadBlock
			}
		}
		if len(c) > 0 && c[0] == '@' {
			var ok bool
			if att, c, ok = cutField(c[1:]); !ok || !json.Valid([]byte(att)) {
				return nil, ErrBadBlock
			}
		}
		semi := indexByte(c, ';')
		if semi < 0 {
			return nil, ErrBadBlock
		}
		d, err := strconv.ParseInt(c[:semi], 10, 64)
		if err != nil {
			return nil, ErrBadBlock
		}
		c = c[semi+1:]
		ts += d
		start := len(buf)
		buf = appendMessageJSON(buf, f[0], conv, seq+uint64(i), f[1], f[2], f[3], f[4], f[5], replyTo, thread, ment, att, ts)
		out = append(out, buf[start:len(buf):len(buf)])
	}
	if len(out) != BlockSize {
		return nil, ErrBadBlock
	}
	return out, nil
}

// cutField reads <len>:<bytes> off the front of c.
func cutField(c string) (field, rest string, ok bool) {
	colon := indexByte(c, ':')
	if colon < 1 || colon > 10 {
		return "", "", false
	}
	n, err := strconv.ParseUint(c[:colon], 10, 31)
	if err != nil || uint64(len(c)-colon-1) < n {
		return "", "", false
	}
	c = c[colon+1:]
	return c[:n], c[n:], true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// appendMessageJSON appends the message as json.Marshal writes a
// natter.Message: the fields in declaration order, type and ref omitted
// when empty, strings HTML-escaped; replyTo and thread omitted when empty;
// ment and att are the mentions' and attachments' JSON as json.Marshal
// writes them, or empty.
func appendMessageJSON(b []byte, id, conv string, seq uint64, from, cmid, typ, body, ref, replyTo, thread, ment, att string, ts int64) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, id, true)
	b = append(b, `,"conv":`...)
	b = jsonstr.Append(b, conv, true)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"from":`...)
	b = jsonstr.Append(b, from, true)
	b = append(b, `,"cmid":`...)
	b = jsonstr.Append(b, cmid, true)
	if typ != "" {
		b = append(b, `,"type":`...)
		b = jsonstr.Append(b, typ, true)
	}
	b = append(b, `,"body":`...)
	b = jsonstr.Append(b, body, true)
	if ref != "" {
		b = append(b, `,"ref":`...)
		b = jsonstr.Append(b, ref, true)
	}
	if replyTo != "" {
		b = append(b, `,"reply_to":`...)
		b = jsonstr.Append(b, replyTo, true)
	}
	if thread != "" {
		b = append(b, `,"thread":`...)
		b = jsonstr.Append(b, thread, true)
	}
	if ment != "" {
		b = append(b, `,"mentions":`...)
		b = append(b, ment...)
	}
	if att != "" {
		b = append(b, `,"attachments":`...)
		b = append(b, att...)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}
