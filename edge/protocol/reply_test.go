package protocol_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

var ackExamples = []string{
	`{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c","seq":42,"ts":1767225600000}`,
	`{"id":"m_1","conv":"d_1","seq":7,"ts":1767225600500,"dup":true}`,
	`{"id":"m_1","conv":"d_1","seq":7,"ts":-1,"dup":false}`,
	` { "seq" : 18446744073709551615 , "id":"a\u00e9\"" ,"ts":-9223372036854775808} `,
	`{}`, `{"id":"x","id":"y"}`,
	// General path or errors.
	`{"ID":"upper"}`, `{"seq":null}`, `{"dup":null}`, `{"seq":1.5}`, `{"seq":-1}`, `{"x":1}`, `[]`, `null`, `{"id":1}`,
	`{"seq":18446744073709551616}`, `{"dup":tru}`, `{"id":"a"`, `{"id":"a"}x`, ``,
}

// FuzzDecodeAck: DecodeAck gives what encoding/json gives wherever it
// reports true, and the ack encoder of Result writes what encoding/json
// writes.
func FuzzDecodeAck(f *testing.F) {
	for _, ex := range ackExamples {
		f.Add([]byte(ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got natter.Ack
		fast := protocol.DecodeAck(data, &got)
		var want natter.Ack
		err := json.Unmarshal(data, &want)
		if fast && (err != nil || got != want) {
			t.Fatalf("DecodeAck(%q) = %+v; encoding/json %+v, %v", data, got, want, err)
		}
		if err == nil {
			checkResultAck(t, want)
		}
	})
}

func TestDecodeAck(t *testing.T) {
	t.Parallel()
	for i, ex := range ackExamples {
		var a natter.Ack
		if fast := protocol.DecodeAck([]byte(ex), &a); fast != (i < 6) {
			t.Errorf("DecodeAck(%s) = %v", ex, fast)
		}
	}
	a := natter.Ack{ID: "stale", Dup: true}
	if !protocol.DecodeAck([]byte(`{"seq":1}`), &a) || a != (natter.Ack{Seq: 1}) {
		t.Fatalf("not overwritten: %+v", a)
	}
	checkResultAck(t, natter.Ack{ID: "m_<&>\u2028", Conv: "g", Seq: 1, TS: 2, Dup: true})
}

// checkResultAck: Result of an ack is what encoding/json writes, and
// DecodeServer's fast path for it gives what encoding/json gives.
func checkResultAck(t *testing.T, a natter.Ack) {
	t.Helper()
	frame := protocol.Result("7", a)
	data, _ := json.Marshal(a)
	want := []byte(`{"t":"res","id":"7","data":` + string(data) + `}`)
	if !bytes.Equal(frame, want) {
		t.Fatalf("Result(%+v) = %s, want %s", a, frame, want)
	}
	f, err := protocol.DecodeServer(frame)
	if err != nil || f.T != protocol.FrameRes || f.ID != "7" || !bytes.Equal(f.Data, data) {
		t.Fatalf("DecodeServer(%s) = %+v, %v", frame, f, err)
	}
}

// FuzzDecodeServerRes: DecodeServer's fast path for res frames gives what
// its encoding/json path gives (frames that differ from the edge's shape
// only in white space take the latter).
func FuzzDecodeServerRes(f *testing.F) {
	for _, ex := range []string{
		`{"t":"res","id":"2","data":{"id":"m_1","conv":"c","seq":1,"ts":2}}`,
		`{"t":"res","id":"2","data":[1,"a",{"b":null}]}`, `{"t":"res","id":"2","data":"x\u00e9"}`,
		`{"t":"res","id":"a\"b","data":1e5}`, `{"t":"res","id":"","data":{}}`, `{"t":"res","id":"2","data":{}}x`,
		`{"t":"res","id":"2","data":{"a":1,}}`, `{"t":"res","id":"2","data":tru}`, `{"t":"res","id":"2","data":{} }`,
	} {
		f.Add([]byte(ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := protocol.DecodeServer(data)
		// The same frame with a space after its first brace never takes
		// the fast path.
		slow := append([]byte{'{', ' '}, bytes.TrimPrefix(data, []byte("{"))...)
		if len(data) == 0 || data[0] != '{' {
			return
		}
		want, werr := protocol.DecodeServer(slow)
		if (gerr == nil) != (werr == nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("DecodeServer(%q) = %+v, %v\nslow path %+v, %v", data, got, gerr, want, werr)
		}
	})
}

// TestResultAckEveryField fails when a field is added to natter.Ack but not
// to the hand-written encoder: every field set, the bytes must be
// encoding/json's.
func TestResultAckEveryField(t *testing.T) {
	t.Parallel()
	var a natter.Ack
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("s" + v.Type().Field(i).Name)
		case reflect.Uint64, reflect.Uint:
			f.SetUint(uint64(i + 1))
		case reflect.Int64, reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("natter.Ack.%s: a kind the test does not fill", v.Type().Field(i).Name)
		}
	}
	checkResultAck(t, a)
}
