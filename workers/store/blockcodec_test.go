package store

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
)

// TestBlockCodecFields fails when natter.Message gains (or loses) a field
// the block codec does not carry: add it to encodeBlockText,
// decodeBlockText, appendMessageJSON and blockFields.
func TestBlockCodecFields(t *testing.T) {
	var names []string
	rt := reflect.TypeFor[natter.Message]()
	for i := range rt.NumField() {
		if rt.Field(i).Tag.Get("bson") == "-" {
			continue // filled in by readers, never stored
		}
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	if !slices.Equal(names, blockFields) {
		t.Fatalf("natter.Message has the JSON fields %v; the block codec carries %v", names, blockFields)
	}
}

// blockOf builds block k of conv from one message's fields, varied per
// message (some strings empty, ts stepping by dts).
func blockOf(conv string, k uint64, id, from, cmid, typ, body, ref string, ts, dts int64) []natter.Message {
	msgs := make([]natter.Message, BlockSize)
	for i := range msgs {
		m := natter.Message{ID: id, Conv: conv, Seq: BlockFirst(k) + uint64(i), From: from, Cmid: cmid, Type: typ, Body: body, Ref: ref, TS: ts + int64(i)*dts}
		switch i % 4 {
		case 1:
			m.Type, m.Ref = "", ""
		case 2:
			m.Body = body + body
		case 3:
			m.Ref, m.Cmid = id, ""
		}
		msgs[i] = m
	}
	return msgs
}

func checkCodec(t *testing.T, msgs []natter.Message) {
	t.Helper()
	conv, k := msgs[0].Conv, BlockOf(msgs[0].Seq)
	c := encodeBlockText(msgs)
	if !utf8.ValidString(c) {
		t.Fatalf("encoding is not valid UTF-8: %q", c)
	}
	got, err := decodeBlockText(conv, k, c)
	if err != nil {
		t.Fatalf("decode: %v (%q)", err, c)
	}
	for i := range msgs {
		want, err := json.Marshal(&msgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got[i], want) {
			continue
		}
		// Invalid UTF-8 is U+FFFD either way: json.Marshal writes it as
		// \ufffd, the codec (which stores valid UTF-8) as the character.
		var a, b natter.Message
		if err := json.Unmarshal(got[i], &a); err != nil {
			t.Fatalf("message %d: %v in %s", i, err, got[i])
		}
		_ = json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) || utf8.Valid(want) && !bytes.Contains(want, []byte(`\ufffd`)) {
			t.Fatalf("message %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
}

func TestBlockCodec(t *testing.T) {
	checkCodec(t, blockOf("g_x", 0, "m_1", "alice", "c1", "text", "hello", "", 1_700_000_000_000, 3))
	checkCodec(t, blockOf("d_a_b", 7, "", "", "", "", "", "", 0, 0))
	checkCodec(t, blockOf("g_y", 1<<40, "id\"<&>", "b\\ob", "c:12;", "edit", "a\x00b\n\u2028é😀", "m_0", math.MinInt64, math.MaxInt64))
	checkCodec(t, blockOf("g_y", 2, "bad\xff", "x\xc3", "", "t", "\xed\xa0\x80", "", math.MaxInt64, -1))
	// Attachments, on some messages of a block.
	att := blockOf("g_z", 3, "m_1", "alice", "c1", "text", "look", "", 1_700_000_000_000, 3)
	att[0].Attachments = []natter.Attachment{{ID: "a_1", Name: "a;b@c:<d>.png", Size: 10, Type: "image/png", Width: 1, Height: 2}}
	att[5].Attachments = []natter.Attachment{{ID: "a_2", Size: 3, Type: "application/pdf"}, {ID: "a_3", Size: 4, Type: "text/plain"}}
	checkCodec(t, att)
	// Replies and thread replies, beside attachments and repeated refs.
	rep := blockOf("g_z", 4, "m_2", "bob", "c2", "text", "re", "", 1_700_000_000_000, 1)
	rep[1].ReplyTo = "m_1"
	rep[2].Thread = "m_1"
	rep[3].ReplyTo, rep[3].Thread = "m_<&>", "m_1"
	rep[3].Attachments = att[0].Attachments
	rep[4].ReplyTo = "bad\xff"
	checkCodec(t, rep)
	// Mentions, beside replies and attachments.
	men := blockOf("g_m", 5, "m_3", "carol", "c3", "text", "@bob", "", 1_700_000_000_000, 1)
	men[0].Mentions = []string{"bob"}
	men[2].Mentions = []string{"bob", "@all", "<&>"}
	men[3].Mentions, men[3].ReplyTo, men[3].Attachments = []string{"dave"}, "m_1", att[0].Attachments
	checkCodec(t, men)
	// Damaged encodings are refused, never a panic.
	good := encodeBlockText(blockOf("g_x", 0, "m_1", "alice", "c1", "text", "hello", "", 1, 1))
	for _, bad := range []string{"", "x", "^" + good, good[:len(good)-1], good + "1:a", "99999999999:a", "-1:a", good[:20], strings.Replace(good, ";", ":", 1)} {
		if _, err := decodeBlockText("g_x", 0, bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
}

// FuzzBlockCodec checks the block codec against encoding/json: each message
// read back is what json.Marshal writes for it.
func FuzzBlockCodec(f *testing.F) {
	f.Add("m_abc", "alice", "c1", "text", "hi", "", int64(1_700_000_000_000), int64(5))
	f.Add("", "", "", "", "", "", int64(0), int64(0))
	f.Add("a\"b", "<x>", "&", "edit", "\x00\x1f\u2029", "r", int64(-1), int64(math.MinInt64))
	f.Add("\xff", "\xc0", "9:", ";", "12:x;", "\u00e9", int64(math.MaxInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, id, from, cmid, typ, body, ref string, ts, dts int64) {
		checkCodec(t, blockOf("g_fuzz", 3, id, from, cmid, typ, body, ref, ts, dts))
		// The optional reply_to and thread, with the fuzzed strings.
		b := blockOf("g_fuzz", 3, id, from, cmid, typ, body, ref, ts, dts)
		b[0].ReplyTo, b[1].Thread, b[2].ReplyTo, b[2].Thread = body, cmid, ref, typ
		checkCodec(t, b)
	})
}

// FuzzBlockDecode: any string decodes to an error or to BlockSize messages
// that encoding/json reads back with the block's conv and seqs.
func FuzzBlockDecode(f *testing.F) {
	f.Add(encodeBlockText(blockOf("g_f", 0, "m", "a", "c", "text", "b", "", 5, 1)))
	f.Add("1:a1:b1:c0:0:0:5;")
	f.Fuzz(func(t *testing.T, c string) {
		msgs, err := decodeBlockText("g_f", 0, c)
		if err != nil {
			return
		}
		for i, raw := range msgs {
			var m natter.Message
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("message %d: %v in %s", i, err, raw)
			}
			if m.Conv != "g_f" || m.Seq != uint64(i)+1 {
				t.Fatalf("message %d: conv %q seq %d", i, m.Conv, m.Seq)
			}
		}
	})
}
