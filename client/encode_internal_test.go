package client

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
)

// The hand-made send frame is byte for byte what encoding/json makes of
// the request, escapes and invalid UTF-8 included, and the edge's decoder
// reads it back.
func TestEncodeSendLikeJSON(t *testing.T) {
	bodies := []string{"hi", "", `quote " backslash \ slash /`, "<b>&amp;</b>", "tab\tnl\nret\rbs\bff\f nul\x00 esc\x1b del\x7f",
		"héllo wörld 日本語 🎉", "bad \xff\xfe utf8 \xc3", "line\u2028sep\u2029end", "\u00a0\ufeff"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(3) > 0 {
				b[i] = byte(r.IntN(128))
			}
		}
		bodies = append(bodies, string(b))
	}
	for i, body := range bodies {
		req := protocol.Request{Op: protocol.OpSend, ID: "a1", Conv: "d_x", Cmid: "c-1", Body: body, First: i%2 == 0}
		if i%3 == 0 {
			req.Type, req.ReplyTo, req.Thread = "note<>", "m1", "m0"
		}
		got, err := encodeRequest(&req)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("body %q:\n got %s\nwant %s", body, got, want)
		}
		var std protocol.Request
		if err := json.Unmarshal(want, &std); err != nil {
			t.Fatal(err)
		}
		back, err := protocol.Decode(got)
		if body == "" {
			continue // refused by the edge (and by Validate before)
		}
		if err != nil {
			t.Fatalf("body %q: the edge's decoder: %v", body, err)
		}
		if back.Body != std.Body || back.First != req.First || back.Cmid != req.Cmid || back.Thread != req.Thread {
			t.Fatalf("body %q: the edge decoded %+v", body, back)
		}
	}
	// Anything but a plain send goes through encoding/json.
	req := protocol.Request{Op: protocol.OpSend, ID: "a1", Conv: "d_x", Cmid: "c", Body: "x", Mentions: []string{"bob"}}
	got, _ := encodeRequest(&req)
	want, _ := json.Marshal(&req)
	if !bytes.Equal(got, want) {
		t.Fatalf("with mentions: got %s, want %s", got, want)
	}
}

// TestEncodeRequestEveryField is the guard of the hand-made send frame:
// a send with any one field of protocol.Request set (a field added to the
// type included) encodes to what encoding/json makes of it, so a field
// that encodeRequest does not write must make plainSend false.
func TestEncodeRequestEveryField(t *testing.T) {
	rt := reflect.TypeOf(protocol.Request{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || f.Tag.Get("json") == "-" {
			continue
		}
		req := protocol.Request{Op: protocol.OpSend, ID: "a1", Conv: "d_x", Cmid: "c-1", Body: "hi"}
		v := reflect.ValueOf(&req).Elem().Field(i)
		if f.Name != "Op" && !setNonZero(v) {
			t.Fatalf("field %s (%s): the guard cannot set it; teach setNonZero its kind", f.Name, f.Type)
		}
		got, err := encodeRequest(&req)
		if err != nil {
			if plainSend(&req) {
				t.Fatalf("field %s: %v", f.Name, err)
			}
			continue // encoded by Request.Encode, which checked the value
		}
		want, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("a send with %s set:\n got %s\nwant %s\n(add the field to plainSend or to encodeRequest)", f.Name, got, want)
		}
	}
}

// setNonZero sets v to a value that is not its zero, and reports whether
// it knows v's kind.
func setNonZero(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x1")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setNonZero(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		setNonZero(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		setNonZero(k)
		setNonZero(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				setNonZero(v.Field(i))
			}
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf("x1"))
	default:
		return false
	}
	return true
}
