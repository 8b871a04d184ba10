package client

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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
