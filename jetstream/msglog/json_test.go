package msglog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	natter "github.com/natter-im/natter"
)

// FuzzAppendMessage checks the hand-written encoders against encoding/json:
// the log payload must be byte for byte what
// json.Marshal writes.
func FuzzAppendMessage(f *testing.F) {
	f.Add("m_x", "c1", uint64(1), "u1", "a", "", "hi", "", int64(1767225600000))
	f.Add("m_x", "c1", uint64(1<<64-1), "u1", "a", "image", `{"w":640}`, "m_y", int64(-1))
	f.Add("", "", uint64(0), "", "", "edit", "quote\" backslash\\ nl\n cr\r tab\t bs\b ff\f ctl\x00\x1f del\x7f", "", int64(0))
	f.Add("m_x", "c", uint64(7), "u", "c", "t", "<a href=\"x\">&amp;</a> \u2028\u2029 é 😀 \xff\xc3 \xed\xa0\x80", "r", int64(42))
	f.Fuzz(func(t *testing.T, id, conv string, seq uint64, from, cmid, typ, body, ref string, ts int64) {
		m := natter.Message{ID: id, Conv: conv, Seq: seq, From: from, Cmid: cmid, Type: typ, Body: body, Ref: ref, TS: ts}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendMessage(nil, &m); !bytes.Equal(got, want) {
			t.Fatalf("appendMessage:\n%s\njson.Marshal:\n%s", got, want)
		}
		if ts, ok := entryTS(want); !ok || ts != m.TS {
			t.Fatalf("entryTS(%s) = %d, %v; want %d", want, ts, ok, m.TS)
		}
	})
}

// TestMessageIDMatchesDefinition checks the allocation-free MessageID against
// its definition, also for inputs longer than valid ids.
func TestMessageIDMatchesDefinition(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 64)
	for _, in := range [][3]string{{"c1", "u1", "m1"}, {"", "", ""}, {long, long, long}, {long + "y", long, long + "z"}} {
		if got, want := MessageID(in[0], in[1], in[2]), refMessageID(in[0], in[1], in[2]); got != want {
			t.Fatalf("MessageID%q = %s, want %s", in, got, want)
		}
	}
}

func refMessageID(conv, from, cmid string) string {
	sum := sha256.Sum256([]byte(conv + "\n" + from + "\n" + cmid))
	return "m_" + strings.ToLower(idEncoding.EncodeToString(sum[:])[:26])
}

// FuzzParseMessage checks the hand-written reader of log entries against
// encoding/json: every payload it accepts, json.Unmarshal reads to the same
// message, and what appendMessage writes round-trips through Decode as it
// does through json.Unmarshal (with or without escapes in the strings).
func FuzzParseMessage(f *testing.F) {
	for _, m := range []natter.Message{
		{ID: "m_x", Conv: "c1", Seq: 1, From: "u1", Cmid: "a", Body: "hi", TS: 1767225600000},
		{ID: "m_x", Conv: "c1", Seq: 1<<64 - 1, From: "u1", Cmid: "a", Type: "image", Body: `{"w":640}`, Ref: "m_y", TS: -1},
		{Body: "quote\" nl\n é 😀 \xff <&>"},
		{ID: "m_r", Conv: "c1", Seq: 2, From: "u1", Cmid: "b", Body: "re", ReplyTo: "m_x", Thread: "m_x", TS: 1767225600001},
		{ID: "m_m", Conv: "g1", Seq: 3, From: "u1", Cmid: "c", Body: "@bob @all", Mentions: []string{"bob", "@all"}, TS: 1767225600002},
	} {
		f.Add(appendMessage(nil, &m))
	}
	f.Add([]byte(`{"id":"a","conv":"c","seq":01,"from":"","cmid":"","body":"","ts":0}`))
	f.Add([]byte(`{"id":"a","conv":"c","seq":1,"from":"","cmid":"","body":"","ts":-0} `))
	f.Add([]byte(`{"id":"a","conv":"c","seq":18446744073709551616,"from":"","cmid":"","body":"","ts":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want natter.Message
		wantErr := json.Unmarshal(data, &want)
		if got, ok := parseMessage(data); ok {
			if wantErr != nil {
				t.Fatalf("parseMessage accepted %q, json.Unmarshal refuses it: %v", data, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: parseMessage %+v, json.Unmarshal %+v", data, got, want)
			}
		}
		// The same fields written by appendMessage.
		m := natter.Message{ID: "m_" + string(data), Conv: "c", Seq: uint64(len(data)) + 1, From: string(data), Cmid: "x", Type: string(data),
			Body: string(data), Ref: string(data), TS: -int64(len(data))}
		enc := appendMessage(nil, &m)
		var viaJSON natter.Message
		if err := json.Unmarshal(enc, &viaJSON); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc, nil)
		if err != nil || !reflect.DeepEqual(got, viaJSON) {
			t.Fatalf("Decode(%q) = %+v, %v; json.Unmarshal %+v", enc, got, err, viaJSON)
		}
	})
}

// TestAppendMessageAttachments checks that a message with attachments is
// written as json.Marshal writes it and decodes back whole (the fast
// reader leaves it to encoding/json).
func TestAppendMessageAttachments(t *testing.T) {
	t.Parallel()
	m := natter.Message{ID: "m_x", Conv: "c1", Seq: 3, From: "u1", Cmid: "a", Type: "text", Body: "look",
		Attachments: []natter.Attachment{
			{ID: "a_1", Name: "cat <1>.png", Size: 1234, Type: "image/png", Width: 640, Height: 480},
			{ID: "a_2", Name: "notes.pdf", Size: 99, Type: "application/pdf"},
		}, TS: 1767225600000}
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got := appendMessage(make([]byte, 0, messageSize(&m)), &m)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendMessage:\n%s\njson.Marshal:\n%s", got, want)
	}
	back, err := Decode(got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Attachments) != 2 || back.Attachments[0] != m.Attachments[0] || back.Attachments[1] != m.Attachments[1] {
		t.Fatalf("decoded attachments %+v, want %+v", back.Attachments, m.Attachments)
	}
}

// TestAppendMessageFields fails when natter.Message gains a stored field
// (one without bson:"-") that appendMessage does not write: a message with
// every stored field set is written as json.Marshal writes it and decodes
// back whole.
func TestAppendMessageFields(t *testing.T) {
	t.Parallel()
	m := natter.Message{ID: "m_x", Conv: "c1", Seq: 3, From: "u1", Cmid: "a", Type: "text", Body: "look", Ref: "m_y",
		ReplyTo: "m_z", Thread: "m_w", Mentions: []string{"u2", "@all"}, Attachments: []natter.Attachment{{ID: "a_1", Size: 1, Type: "image/png"}}, TS: 1767225600000}
	rv := reflect.ValueOf(m)
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.Tag.Get("bson") != "-" && rv.Field(i).IsZero() {
			t.Fatalf("natter.Message.%s is stored but zero here: set it, and have appendMessage and parseMessage carry it", f.Name)
		}
	}
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got := appendMessage(nil, &m)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendMessage:\n%s\njson.Marshal:\n%s", got, want)
	}
	back, err := Decode(got, nil)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("Decode = %+v, %v; want %+v", back, err, m)
	}
	if _, ok := parseMessage(appendMessage(nil, &natter.Message{ID: "m", Conv: "c", Body: "b", ReplyTo: "m_a", Thread: "m_b"})); !ok {
		t.Fatal("parseMessage does not read reply_to and thread")
	}
	mm := natter.Message{ID: "m", Conv: "c", Body: "b", Mentions: []string{"u1", "@all"}}
	if back, ok := parseMessage(appendMessage(nil, &mm)); !ok || !reflect.DeepEqual(back.Mentions, mm.Mentions) {
		t.Fatalf("parseMessage does not read mentions: %+v, %v", back, ok)
	}
}
