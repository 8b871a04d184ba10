package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// pushExamples are push frames: the first fastExamples are the ones the
// fast path takes, the others it leaves to the general decoder.
var pushExamples = []string{
	`{"t":"msg","msg":{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c","seq":42,"from":"alice","cmid":"c-1001","body":"hi all","ts":1767225600000}}`,
	`{"t":"msg","msg":{"id":"m_1","conv":"c","seq":1,"from":"a","cmid":"x","type":"edit","body":"new","ref":"m_0","ts":1}}`,
	`{"t":"msg","msg":{"id":"m_1","conv":"c","seq":18446744073709551615,"from":"a","cmid":"x","body":"","ts":-9223372036854775808}}`,
	`{"t":"msg","msg":{"body":"a\ud83d\ude00b\ud800\u0041\udc00x\u00e9\/\"\\\b\f\n\r\t","conv":"c","seq":2,"ts":0}}`,
	"{\"t\":\"msg\",\"msg\":{\"body\":\"\xff\xed\xa0\x80ok \xc3\xa9\",\"seq\":3}}",
	"{\"t\":\"msg\",\"msg\": { \"id\" : \"m\" ,\n\"seq\":\t4 } } \r\n",
	`{"t":"msg","msg":{"seq":5,"seq":6,"body":"x","body":"y"}}`,
	`{"t":"msg","msg":{"\u0069d":"escaped key","seq":7}}`,
	`{"t":"msg","msg":{}}`,
	`{"t":"msg","msg":{"body":"01234567\"9abcdef0123456\\789abcdé0123456789abcdef~~~~~~~~","seq":1}}`,
	`{"t":"msg","msg":{"id":"m","seq":2,"mentions":["bob","@all"],"mentions":[ "c\u00e9" ] , "ts":3}}`,
	`{"t":"msg","msg":{"id":"m","seq":2,"mentions":[]}}`,
	// General path: valid, but not the edge's shape.
	`{"t":"msg","msg":{"id":"m","seq":2,"mentions":null}}`,
	`{"t":"msg","msg":{"ID":"upper","Seq":8}}`,
	`{"t":"msg","msg":{"id":"m","seq":9,"future":{"a":[1,2]}}}`,
	`{"t":"msg","msg":{"id":null,"seq":null,"ts":null}}`,
	`{"msg":{"id":"m","seq":10},"t":"msg"}`,
	`{"t":"msg","msg":{"id":"m","seq":11},"x":1}`,
	`{"t":"msg","msg":{"id":"m","seq":12},"t":"res"}`,
	// Errors.
	`{"t":"msg","msg":{"seq":1.0}}`, `{"t":"msg","msg":{"seq":-1}}`, `{"t":"msg","msg":{"seq":-0}}`,
	`{"t":"msg","msg":{"seq":18446744073709551616}}`, `{"t":"msg","msg":{"ts":9223372036854775808}}`,
	`{"t":"msg","msg":{"seq":01}}`, `{"t":"msg","msg":{"seq":1e2}}`, `{"t":"msg","msg":{"seq":"1"}}`,
	`{"t":"msg","msg":{"id":1}}`, `{"t":"msg","msg":{"body":"0123456789abcdefghij` + "\x1f" + `"}}`,
	`{"t":"msg","msg":{"id":"a` + "\x01" + `"}}`, `{"t":"msg","msg":{"id":"\x"}}`,
	`{"t":"msg","msg":{"id":"m",}}`, `{"t":"msg","msg":{"id":"m"}`, `{"t":"msg","msg":{"id":"m"}}x`,
	`{"t":"msg","msg":[]}`, `{"t":"msg","msg":null}`, `{"t":"msg","msg":`,
}

func TestDecodePush(t *testing.T) {
	t.Parallel()
	var m natter.Message
	frame := protocol.Push([]byte(`{"id":"m_1","conv":"g_1","seq":42,"from":"alice","cmid":"c-1","body":"caf\u00e9 \"x\"","ref":"m_0","reply_to":"m_r","thread":"m_t","mentions":["bob","@all"],"ts":1767225600000}`))
	if !protocol.DecodePush(frame, &m) {
		t.Fatalf("DecodePush(%s) = false", frame)
	}
	want := natter.Message{ID: "m_1", Conv: "g_1", Seq: 42, From: "alice", Cmid: "c-1", Body: `café "x"`, Ref: "m_0", ReplyTo: "m_r", Thread: "m_t", Mentions: []string{"bob", "@all"}, TS: 1767225600000}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	// m is overwritten, not merged into.
	if !protocol.DecodePush([]byte(`{"t":"msg","msg":{"seq":1}}`), &m) || !reflect.DeepEqual(m, natter.Message{Seq: 1}) {
		t.Fatalf("second decode: %+v", m)
	}
	// The result does not alias the frame.
	frame = []byte(`{"t":"msg","msg":{"id":"abc","seq":1}}`)
	if !protocol.DecodePush(frame, &m) {
		t.Fatal("DecodePush = false")
	}
	copy(frame[bytes.Index(frame, []byte("abc")):], "xyz")
	if m.ID != "abc" {
		t.Fatalf("id changed with the frame: %q", m.ID)
	}
	for _, frame := range []string{`{"t":"res","id":"1","data":{}}`, `{"t":"msg","msg":{"ID":"x"}}`, ` {"t":"msg","msg":{}}`, `{"t":"msg","msg":{"seq":1.5}}`} {
		if protocol.DecodePush([]byte(frame), &m) {
			t.Errorf("DecodePush(%s) = true", frame)
		}
	}
}

func TestDecodeServerPushMatchesJSON(t *testing.T) {
	t.Parallel()
	for i, ex := range pushExamples {
		checkPush(t, []byte(ex))
		var m natter.Message
		if fast := protocol.DecodePush([]byte(ex), &m); fast != (i < fastExamples) {
			t.Errorf("DecodePush(%s) = %v", ex, fast)
		}
	}
}

const fastExamples = 12

// FuzzDecodePush checks DecodeServer, with its fast path for pushes,
// against encoding/json on msg frames: both accept the same frames with the
// same message, and every frame the fast path takes is one encoding/json
// accepts with that message.
func FuzzDecodePush(f *testing.F) {
	for _, ex := range pushExamples {
		f.Add([]byte(ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPush(t, data)
	})
}

func checkPush(t *testing.T, data []byte) {
	t.Helper()
	want, werr := refDecodePush(data)
	var m natter.Message
	if protocol.DecodePush(data, &m) {
		if werr != nil || !reflect.DeepEqual(m, *want) {
			t.Fatalf("DecodePush(%q) = %+v\nencoding/json: %+v, %v", data, m, want, werr)
		}
	}
	if want != nil && werr == nil {
		checkPushID(t, want)
	}
	fr, err := protocol.DecodeServer(data)
	if want == nil && werr == nil { // not a msg frame
		if err == nil && fr.T == protocol.FrameMsg {
			t.Fatalf("DecodeServer(%q) = msg frame %+v; encoding/json: not one", data, fr.Message)
		}
		return
	}
	if (err == nil) != (werr == nil) {
		t.Fatalf("DecodeServer(%q) = %+v, %v\nencoding/json: %+v, %v", data, fr, err, want, werr)
	}
	if err != nil {
		var g, w *protocol.Error
		if !errors.As(err, &g) || !errors.As(werr, &w) || g.Code != w.Code {
			t.Fatalf("DecodeServer(%q) error %v, encoding/json %v", data, err, werr)
		}
		return
	}
	if fr.T != protocol.FrameMsg || fr.Message == nil || !reflect.DeepEqual(*fr.Message, *want) {
		t.Fatalf("DecodeServer(%q) = %+v\nencoding/json: %+v", data, fr, want)
	}
}

// refDecodePush decodes a msg frame with encoding/json, as DecodeServer did
// before its fast path: nil, nil when data is valid but not a msg frame.
func refDecodePush(data []byte) (*natter.Message, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &protocol.Error{Code: protocol.CodeBadJSON}
	}
	var w struct {
		T    string          `json:"t"`
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
		Code json.RawMessage `json:"code"`
		Msg  json.RawMessage `json:"msg"`
		protocol.HelloFrame
		Reason    string `json:"reason"`
		Reconnect bool   `json:"reconnect"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if w.T == protocol.FrameMsg {
				return nil, &protocol.Error{Code: protocol.CodeBadFrame}
			}
			return nil, nil
		}
		return nil, &protocol.Error{Code: protocol.CodeBadJSON}
	}
	if w.T != protocol.FrameMsg {
		return nil, nil
	}
	if t := bytes.TrimLeft(w.Msg, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &protocol.Error{Code: protocol.CodeBadFrame}
	}
	m := new(natter.Message)
	if err := json.Unmarshal(w.Msg, m); err != nil {
		return nil, &protocol.Error{Code: protocol.CodeBadFrame}
	}
	return m, nil
}

// TestDecodeServerNoAlias: no decoded frame shares memory with the input,
// so that a client may read every frame into the same buffer.
func TestDecodeServerNoAlias(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{
		`{"t":"res","id":"7","data":{"id":"m_1","conv":"c","seq":1}}`,
		`{"t":"err","id":"7","code":"not_member","msg":"not a member"}`,
		`{"t":"msg","msg":{"id":"m_1","conv":"c","seq":1,"body":"b"}}`,
		`{"t":"msg","msg":{"ID":"m_1","conv":"c","seq":1,"body":"b"}}`,
		`{"t":"hello","v":1,"user":"alice","session":"s_1","ping_ms":25000,"max_body":65536}`,
		`{"t":"bye","code":1001,"reason":"draining","reconnect":true}`,
	} {
		data := []byte(frame)
		f, err := protocol.DecodeServer(data)
		if err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		want := fmt.Sprintf("%+v %s %+v %+v %+v %+v", *f, f.Data, f.Err, f.Message, f.Hello, f.Bye)
		for i := range data {
			data[i] = 'X'
		}
		if got := fmt.Sprintf("%+v %s %+v %+v %+v %+v", *f, f.Data, f.Err, f.Message, f.Hello, f.Bye); got != want {
			t.Errorf("%s: the frame changed with its input:\n%s\n%s", frame, want, got)
		}
	}
}

// checkPushID: PushID of the push of m as encoding/json writes it (id
// first, as the log's entries) is m's id, or false for an id with escapes.
func checkPushID(t *testing.T, m *natter.Message) {
	t.Helper()
	enc, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := protocol.PushID(protocol.Push(enc))
	plain := !bytes.ContainsAny(enc[:len(`{"id":"`)+len(m.ID)+1], `\`)
	if ok != plain || (ok && string(id) != m.ID) {
		t.Fatalf("PushID of the push of %s = %q, %v; want %q, %v", enc, id, ok, m.ID, plain)
	}
}

func TestPushID(t *testing.T) {
	t.Parallel()
	for frame, want := range map[string]string{
		`{"t":"msg","msg":{"id":"m_K5QW","conv":"c","seq":1}}`: "m_K5QW",
		`{"t":"msg","msg":{"id":"","seq":1}}`:                  "",
	} {
		if id, ok := protocol.PushID([]byte(frame)); !ok || string(id) != want {
			t.Errorf("PushID(%s) = %q, %v; want %q", frame, id, ok, want)
		}
	}
	for _, frame := range []string{
		`{"t":"msg","msg":{"conv":"c","id":"m_1"}}`, `{"t":"msg","msg":{"id":"m\u0031"}}`, `{"t":"msg","msg":{"id":"m_1`,
		`{"t":"res","id":"1","data":{}}`, `{"t":"conv","conv":"c"}`, ``,
	} {
		if id, ok := protocol.PushID([]byte(frame)); ok {
			t.Errorf("PushID(%s) = %q, true", frame, id)
		}
	}
}
