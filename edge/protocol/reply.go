package protocol

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/jsonstr"
)

// The reply a sender gets most, the ack of a send, has hand-written codecs
// like the push ([DecodePush]): the edge encodes it without reflection
// (byte for byte what encoding/json writes), and a client decodes a res
// frame as the edge writes it, and the ack in it, without reflection.
// Anything else takes encoding/json; the fuzz tests hold the fast paths to
// what it gives.

// appendAck appends the JSON of a as json.Marshal writes it.
func appendAck(b []byte, a *natter.Ack) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, a.ID, true)
	b = append(b, `,"conv":`...)
	b = jsonstr.Append(b, a.Conv, true)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, a.Seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, a.TS, 10)
	if a.Dup {
		b = append(b, `,"dup":true`...)
	}
	return append(b, '}')
}

// resultAck is [Result] for an ack.
func resultAck(id string, a *natter.Ack) []byte {
	b := make([]byte, 0, len(`{"t":"res","id":"","data":{"id":"","conv":"","seq":,"ts":,"dup":true}}`)+len(id)+len(a.ID)+len(a.Conv)+48)
	b = append(b, `{"t":"res","id":`...)
	b = appendString(b, id)
	b = append(b, `,"data":`...)
	b = appendAck(b, a)
	return append(b, '}')
}

var (
	resPrefix = []byte(`{"t":"res","id":"`)
	resData   = []byte(`,"data":`)
)

// decodeRes is the fast path of [DecodeServer] for a res frame as the edge
// writes it ([Result]): {"t":"res","id":"...","data":<value>} with no white
// space outside the value. ok is false for any other frame.
func decodeRes(data []byte) (f *ServerFrame, ok bool) {
	if !bytes.HasPrefix(data, resPrefix) {
		return nil, false
	}
	d := decoder{data: data, pos: len(resPrefix) - 1}
	id, err := d.fastStr()
	if err != nil || len(id) == 0 || !bytes.HasPrefix(data[d.pos:], resData) {
		return nil, false
	}
	d.pos += len(resData)
	start := d.pos
	if d.skip() != nil || d.pos != len(data)-1 || data[d.pos] != '}' {
		return nil, false
	}
	return &ServerFrame{T: FrameRes, ID: string(id), Data: bytes.Clone(data[start:d.pos])}, true
}

// errNotFast ends a fast decode that leaves the data to encoding/json.
var errNotFast = errors.New("protocol: not a fast-path frame")

// DecodeAck decodes the data of a send's res frame into a (overwritten) and
// reports true, with what encoding/json would give, for an object of the
// Ack's fields named exactly as its JSON tags, holding strings, integers
// and a boolean; for any other data, valid or not, it reports false:
// decode it with encoding/json.
func DecodeAck(data []byte, a *natter.Ack) bool {
	d := decoder{data: data}
	d.ws()
	if d.peek() != '{' {
		return false
	}
	*a = natter.Ack{}
	err := d.each('{', func(key []byte) error {
		ok := true
		switch string(key) {
		case "id", "conv":
			if d.peek() != '"' {
				return errNotFast
			}
			v, err := d.fastStr()
			if err != nil {
				return errNotFast
			}
			if key[0] == 'i' {
				a.ID = string(v)
			} else {
				a.Conv = string(v)
			}
		case "seq":
			a.Seq, ok = d.uint()
		case "ts":
			a.TS, ok = d.int()
		case "dup":
			switch {
			case bytes.HasPrefix(data[d.pos:], []byte("true")):
				a.Dup, d.pos = true, d.pos+4
			case bytes.HasPrefix(data[d.pos:], []byte("false")):
				a.Dup, d.pos = false, d.pos+5
			default:
				return errNotFast
			}
		default:
			return errNotFast
		}
		if !ok {
			return errNotFast
		}
		return nil
	})
	if err != nil {
		return false
	}
	d.ws()
	return d.pos == len(data)
}
