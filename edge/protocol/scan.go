package protocol

import (
	"bytes"
	"errors"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner for client frames: one pass, no reflection, strings
// unescaped exactly as encoding/json does (invalid UTF-8 and lone surrogates
// become U+FFFD). FuzzDecodeMatchesJSON checks it against encoding/json.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// errSyntax means the frame is not valid JSON; decoder.off says where.
var errSyntax = errors.New("protocol: invalid JSON")

type decoder struct {
	data []byte
	pos  int
	// off is the offset of the syntax error.
	off int
	// typeErr is the first field whose value had the wrong JSON type. Like
	// encoding/json, decoding goes on, so that a syntax error later in the
	// frame still wins and the request id is still read.
	typeErr string
	// buf holds the last unescaped string; reused.
	buf []byte
	// depth is the nesting level of the container being read.
	depth int
}

func (d *decoder) fail(off int) error {
	d.off = off
	return errSyntax
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, 0 at the end.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// expect consumes c after white space.
func (d *decoder) expect(c byte) error {
	d.ws()
	if d.peek() != c {
		return d.fail(d.pos)
	}
	d.pos++
	return nil
}

// mistyped records field as the first type error and skips the value.
func (d *decoder) mistyped(field string) error {
	if d.typeErr == "" {
		d.typeErr = field
	}
	return d.skip()
}

// str reads a JSON string at d.pos. The result aliases d.data or d.buf and
// is valid until the next call.
func (d *decoder) str() ([]byte, error) {
	start := d.pos + 1
	i := start
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], nil
		case c == '\\':
			return d.strSlow(start, i)
		case c < 0x20:
			return nil, d.fail(i)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return d.strSlow(start, i)
			}
			i += size
		}
	}
	return nil, d.fail(len(d.data))
}

// strSlow unescapes a string into d.buf from i on.
func (d *decoder) strSlow(start, i int) ([]byte, error) {
	b := append(d.buf[:0], d.data[start:i]...)
	data := d.data
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = b
			return b, nil
		case c == '\\':
			if i+1 >= len(data) {
				return nil, d.fail(len(data))
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(data[i+2:])
				if r < 0 {
					return nil, d.fail(i + 2)
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2 = hex4(data[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, d.fail(i + 1)
			}
			i += 2
		case c < 0x20:
			return nil, d.fail(i)
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, data[i:i+size]...)
			}
			i += size
		}
	}
	return nil, d.fail(len(data))
}

// hex4 decodes 4 hex digits at the start of b, -1 if there are none.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number scans a JSON number at d.pos. isInt is false when it has a
// fraction or an exponent.
func (d *decoder) number() (num []byte, isInt bool, err error) {
	data, i := d.data, d.pos
	start := i
	if i < len(data) && data[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case digits() == 0:
		return nil, false, d.fail(i)
	}
	isInt = true
	if i < len(data) && data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false, d.fail(i)
		}
		isInt = false
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false, d.fail(i)
		}
		isInt = false
	}
	d.pos = i
	return data[start:i], isInt, nil
}

// literal consumes true, false or null.
func (d *decoder) literal() error {
	for _, lit := range [...]string{"null", "true", "false"} {
		if bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
			d.pos += len(lit)
			return nil
		}
	}
	return d.fail(d.pos)
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if bytes.HasPrefix(d.data[d.pos:], []byte("null")) {
		d.pos += 4
		return true
	}
	return false
}

// skip validates and skips one value.
func (d *decoder) skip() error {
	switch c := d.peek(); {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{', c == '[':
		return d.each(c, func([]byte) error { return d.skip() })
	case c == '-' || c >= '0' && c <= '9':
		_, _, err := d.number()
		return err
	default:
		return d.literal()
	}
}

// each walks the object or array at d.pos (open is '{' or '['), calling fn
// at each value; for objects, key is the member name (valid until fn reads
// another string). fn must consume the value.
func (d *decoder) each(open byte, fn func(key []byte) error) error {
	if d.depth >= maxDepth {
		return d.fail(d.pos)
	}
	d.depth++
	defer func() { d.depth-- }()
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	d.pos++
	d.ws()
	if d.peek() == closer {
		d.pos++
		return nil
	}
	for {
		var key []byte
		if open == '{' {
			if d.peek() != '"' {
				return d.fail(d.pos)
			}
			k, err := d.str()
			if err != nil {
				return err
			}
			if err := d.expect(':'); err != nil {
				return err
			}
			key = k
		}
		d.ws()
		if err := fn(key); err != nil {
			return err
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.pos++
			d.ws()
		case closer:
			d.pos++
			return nil
		default:
			return d.fail(d.pos)
		}
	}
}
