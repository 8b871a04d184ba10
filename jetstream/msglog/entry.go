package msglog

import (
	"bytes"
	"fmt"
)

// entry is a log entry read for a page: its seq and its payload, the JSON
// of its natter.Message as json.Marshal (and appendMessage) writes it.
type entry struct {
	seq  uint64
	data []byte
}

// checkEntry checks that data is a log entry of conv and returns its seq
// and its JSON in the layout json.Marshal writes. An entry as
// appendMessage writes it is checked by a scan of its leading fields (id,
// conv, seq) and returned as is: the reader that decodes it or passes it on
// checks the rest ([Log.BeforeRaw] with json.Valid). Any other layout is
// decoded and encoded again.
func checkEntry(data []byte, conv string) (uint64, []byte, error) {
	if seq, ok := scanEntry(data, conv); ok {
		return seq, data, nil
	}
	m, err := Decode(data, nil)
	if err != nil {
		return 0, nil, err
	}
	if m.Conv != conv {
		return 0, nil, fmt.Errorf("%w: entry %s of %s read as one of %s", ErrCorrupt, m.ID, m.Conv, conv)
	}
	return m.Seq, appendMessage(make([]byte, 0, messageSize(&m)), &m), nil
}

// scanEntry reads the seq of an entry of conv laid out as appendMessage
// writes it: {"id":"<id>","conv":"<conv>","seq":<seq>,... ok is false for
// anything else (another layout, another conversation).
func scanEntry(data []byte, conv string) (seq uint64, ok bool) {
	const idKey, convKey, seqKey = `{"id":"`, `","conv":"`, `","seq":`
	if !bytes.HasPrefix(data, []byte(idKey)) || len(data) < 2 || data[len(data)-1] != '}' {
		return 0, false
	}
	rest := data[len(idKey):]
	i := bytes.IndexByte(rest, '"')
	// Message ids have no characters JSON escapes; an escape means
	// another layout.
	if i <= 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return 0, false
	}
	rest = rest[i:]
	if !bytes.HasPrefix(rest, []byte(convKey)) {
		return 0, false
	}
	rest = rest[len(convKey):]
	if len(rest) < len(conv) || string(rest[:len(conv)]) != conv {
		return 0, false
	}
	rest = rest[len(conv):]
	if !bytes.HasPrefix(rest, []byte(seqKey)) {
		return 0, false
	}
	rest = rest[len(seqKey):]
	n := 0
	for ; n < len(rest) && n < 20 && rest[n] >= '0' && rest[n] <= '9'; n++ {
		seq = seq*10 + uint64(rest[n]-'0')
	}
	if n == 0 || n == 20 || rest[0] == '0' || n >= len(rest) || rest[n] != ',' {
		return 0, false
	}
	return seq, true
}

// validFlat reports whether b is valid JSON of the shape of a log entry: an
// object whose values are strings or integers. It is true only for valid
// JSON (FuzzValidFlat checks against json.Valid) and about five times
// cheaper than json.Valid; an entry it rejects is decoded instead.
func validFlat(b []byte) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	if len(b) == 2 {
		return true
	}
	for i := 1; ; i++ {
		if i = skipString(b, i); i < 0 || i >= len(b) || b[i] != ':' {
			return false
		}
		if i++; i >= len(b) {
			return false
		}
		if b[i] == '"' {
			i = skipString(b, i)
		} else {
			i = skipInt(b, i)
		}
		if i < 0 || i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return i == len(b)-1
		}
		if b[i] != ',' {
			return false
		}
	}
}

// skipString returns the index after the JSON string starting at b[i], -1
// if there is none.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i++; i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// skipInt returns the index after the JSON integer starting at b[i], -1
// if there is none.
func skipInt(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return -1
	}
	return i
}
