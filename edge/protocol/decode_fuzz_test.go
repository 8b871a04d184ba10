package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
)

// FuzzDecode checks that Decode never panics, that every error is a
// *protocol.Error with a known code that encodes as a valid err frame, and
// that every request it accepts encodes (as a client would) and decodes back
// to itself.
func FuzzDecode(f *testing.F) {
	for _, ex := range clientExamples {
		f.Add([]byte(ex))
	}
	for _, ex := range docExamples(f, "client") {
		f.Add([]byte(ex))
	}
	for _, ex := range []string{
		``, `null`, `[]`, `{}`, `{"op":"ping"}`, `{"op":"ping","id":1}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"\ud800"}`,
		`{"op":"sync","id":"1","cursors":{"c":18446744073709551615}}`,
		`{"op":"history","id":"1","conv":"c","before":1,"after":2}`,
		`{"op":"history","id":"1","conv":"c","after":0}`,
		`{"op":"history","id":"1","conv":"c","before":0}`,
		`{"op":"history","id":"1","conv":"c","after":null}`,
		`{"op":"conv.create","id":"1","kind":"group","members":["a",null]}`,
	} {
		f.Add([]byte(ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := protocol.Decode(data)
		if err != nil {
			if r != nil {
				t.Fatalf("Decode returned a request and error %v", err)
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *protocol.Error: %v", err, err)
			}
			if !slices.Contains(allCodes, pe.Code) {
				t.Fatalf("unknown code %q", pe.Code)
			}
			if frame := protocol.Err(pe.ID, pe.Code, pe.Msg); !json.Valid(frame) {
				t.Fatalf("err frame is not JSON: %s", frame)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Validate after Decode: %v", err)
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("Encode after Decode: %v", err)
		}
		again, err := protocol.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode) %s: %v", enc, err)
		}
		if !sameRequest(r, again) {
			t.Fatalf("round trip %s:\n%+v\n%+v", enc, *r, *again)
		}
		// The edge echoes the request id; the reply must carry it intact.
		res, err := protocol.DecodeServer(protocol.Result(r.ID, nil))
		if err != nil || res.ID != r.ID {
			t.Fatalf("res for id %q: %+v, %v", r.ID, res, err)
		}
	})
}

// FuzzDecodeServer checks that DecodeServer never panics and that what it
// accepts is consistent with its type.
func FuzzDecodeServer(f *testing.F) {
	for _, ex := range docExamples(f, "server") {
		f.Add([]byte(ex))
	}
	f.Add([]byte(`{"t":"err","code":"x","msg":null}`))
	f.Add([]byte(`{"t":"bye","code":1e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := protocol.DecodeServer(data)
		if err != nil {
			return
		}
		switch fr.T {
		case protocol.FrameRes:
			if fr.ID == "" || len(fr.Data) == 0 {
				t.Fatalf("res without id or data: %+v", fr)
			}
		case protocol.FrameErr:
			if fr.Err == nil || fr.Err.Code == "" {
				t.Fatalf("err without code: %+v", fr)
			}
		case protocol.FrameMsg:
			if fr.Message == nil {
				t.Fatalf("msg without message: %+v", fr)
			}
		case protocol.FrameHello:
			if fr.Hello == nil || fr.Hello.V != protocol.Version {
				t.Fatalf("bad hello: %+v", fr)
			}
		case protocol.FrameBye:
			if fr.Bye == nil {
				t.Fatalf("bye without content: %+v", fr)
			}
		case protocol.FrameConv:
			if fr.Conv == nil || fr.Conv.Conv == "" || fr.Conv.Event == "" {
				t.Fatalf("conv without content: %+v", fr)
			}
		case protocol.FramePresence:
			if fr.Presence == nil || fr.Presence.User == "" {
				t.Fatalf("presence without user: %+v", fr)
			}
		case protocol.FrameTyping:
			if fr.Typing == nil || fr.Typing.Conv == "" || fr.Typing.User == "" || fr.Typing.State == "" {
				t.Fatalf("typing without content: %+v", fr)
			}
		}
	})
}

// FuzzErr checks that the hand-written JSON string encoder produces what
// encoding/json reads back as encoding/json would have written it.
func FuzzErr(f *testing.F) {
	f.Add("1", "conv: required")
	f.Add("", "quote\" backslash\\ nl\n ctl\x00\x1f del\x7f \u2028\u2029 <&> é \xff\xc3")
	f.Fuzz(func(t *testing.T, id, msg string) {
		frame := protocol.Err(id, protocol.CodeBadFrame, msg)
		if !json.Valid(frame) {
			t.Fatalf("not JSON: %q", frame)
		}
		fr, err := protocol.DecodeServer(frame)
		if err != nil {
			t.Fatalf("DecodeServer(%s): %v", frame, err)
		}
		if fr.Err.ID != viaJSON(t, id) || fr.Err.Msg != viaJSON(t, msg) {
			t.Fatalf("Err(%q, %q) decoded as %+v", id, msg, fr.Err)
		}
	})
}

// FuzzDecodeMatchesJSON checks the hand-written decoder against
// encoding/json: both must accept the same frames with the same fields and
// reject the same frames with the same code, request id and field. Frames
// with a repeated or case-folded top-level field are left out: there Decode
// deliberately differs (last field wins; names are case-sensitive).
func FuzzDecodeMatchesJSON(f *testing.F) {
	for _, ex := range clientExamples {
		f.Add([]byte(ex))
	}
	for _, ex := range []string{
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"a\ud83d\ude00b\ud800\u0041\udc00x\u00e9\/"}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"\xff\xed\xa0\x80ok"}`,
		`{"op":"sync","id":"1","cursors":{"c":null,"d":-0,"e":1.0}}`,
		`{"op":"history","id":"1","conv":"c","limit":-0,"before":18446744073709551615}`,
		`{"op":"history","id":"1","conv":"c","limit":-9223372036854775808}`,
		`{"op":"history","id":"1","conv":"c","after":0}`,
		`{"op":"history","id":"1","conv":"c","after":null,"limit":3}`,
		`{"op":"history","id":"1","conv":"c","before":0}`,
		`{"op":"history","id":"1","conv":"c","after":"0"}`,
		`{"op":"history","id":"1","conv":"c","after":0,"before":1}`,
		`{"op":"members.add","id":"1","conv":"c","users":["a",null,"b"]}`,
		`{"op":"ping","id":"1","x":[[{"y":[true,false,null,-1.5e+3]}]]} `,
		`{"op":"ping","id":"1"}x`, `{"op":"ping","id":"1",}`, `{"op":"ping","id":"1","seq":01}`,
		`{"\u006fp":"ping","id":"1"}`, `{"op":"ping","id":"1","body":1,"conv":[}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"b","first":false}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"b","first":null}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"b","first":1}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"b","first":"true"}`,
		`{"op":"send","id":"1","conv":"c","cmid":"m","body":"b","first":truex}`,
		`{"op":"presence.set","id":"1","hidden":1}`,
		`{"op":"presence.set","id":"1","hidden":null}`,
		`{"op":"typing","id":"1","conv":"c","state":1}`,
		`{"op":"presence.sub","id":"1","users":["a","a b"]}`,
		`{"op":"push.register","id":"1","provider":"webpush","subscription":{"Endpoint":"https://x","KEYS":{"auth":1}}}`,
		`{"op":"push.register","id":"1","provider":"webpush","subscription":{"keys":null,"endpoint":null}}`,
		`{"op":"push.register","id":"1","provider":"apns","subscription":null,"token":"00"}`,
	} {
		f.Add([]byte(ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if ambiguous(data) {
			return
		}
		got, gerr := protocol.Decode(data)
		want, werr := refDecode(data)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("Decode(%q) = %+v, %v\nencoding/json: %+v, %v", data, got, gerr, want, werr)
		}
		if gerr != nil {
			var g, w *protocol.Error
			if !errors.As(gerr, &g) || !errors.As(werr, &w) {
				t.Fatalf("errors %T %T", gerr, werr)
			}
			if g.Code != w.Code || g.ID != w.ID || g.Code == protocol.CodeBadFrame && errField(g.Msg) != errField(w.Msg) {
				t.Fatalf("Decode(%q) error %+v, encoding/json %+v", data, *g, *w)
			}
			return
		}
		if !sameRequest(got, want) {
			t.Fatalf("Decode(%q) =\n%+v\nencoding/json:\n%+v", data, *got, *want)
		}
	})
}

// refDecode is Decode written with encoding/json.
func refDecode(data []byte) (*protocol.Request, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &protocol.Error{Code: protocol.CodeBadJSON}
	}
	var r protocol.Request
	err := json.Unmarshal(data, &r)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &typeErr):
		field, _, _ := strings.Cut(typeErr.Field, ".")
		if field == "id" {
			return nil, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "id:"}
		}
		if _, err := (&protocol.Request{Op: protocol.OpPing, ID: r.ID}).Encode(); err != nil {
			return nil, err
		}
		return nil, &protocol.Error{ID: r.ID, Code: protocol.CodeBadFrame, Msg: field + ":"}
	default:
		return nil, &protocol.Error{Code: protocol.CodeBadJSON}
	}
	if _, err := (&protocol.Request{Op: protocol.OpPing, ID: r.ID}).Encode(); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// ambiguous reports whether data is a JSON object with a repeated top-level
// field, or one that matches a request field only case-insensitively.
func ambiguous(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	names := requestFields()
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		key := tok.(string)
		if seen[key] {
			return true
		}
		seen[key] = true
		if !names[key] {
			for name := range names {
				if strings.EqualFold(key, name) {
					return true
				}
			}
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

func requestFields() map[string]bool {
	names := map[string]bool{}
	rt := reflect.TypeFor[protocol.Request]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// errField is the field a bad_frame message names.
func errField(msg string) string {
	field, _, _ := strings.Cut(msg, ":")
	field, _, _ = strings.Cut(field, "[")
	return field
}
