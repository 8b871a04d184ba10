package protocol_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// benchPush is a push frame as the edge writes it for the fanout bench (a
// 128-byte body).
var benchPush = protocol.Push([]byte(`{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c0e1d2b","seq":1000000000000042,"from":"bb1c2d3f0","cmid":"Zm9vYmFyYmF6cXV4cXV1eA","body":"1767225600123456789 ` +
	strings.Repeat("x", 108) + `","ts":1767225600123}`))

// BenchmarkDecodePush: the fast path of a push frame.
func BenchmarkDecodePush(b *testing.B) {
	var m natter.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPush)))
	for b.Loop() {
		if !protocol.DecodePush(benchPush, &m) {
			b.Fatal("not decoded")
		}
	}
}

// BenchmarkDecodeServerPush: the same frame through DecodeServer (the fast
// path, plus the frame's allocation).
func BenchmarkDecodeServerPush(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPush)))
	for b.Loop() {
		if _, err := protocol.DecodeServer(benchPush); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAckFrame: a send's res frame as the edge writes it, to the
// ack: the fast paths (DecodeServer's for res, DecodeAck) against
// encoding/json for both steps (what the Go SDK did before).
func BenchmarkDecodeAckFrame(b *testing.B) {
	frame := protocol.Result("12345", natter.Ack{ID: "m_K5QWY3DFMZXGC4TBNFZGK2LMNQ", Conv: "d_1cb15457d1ddab60e205c0fe3ca2f65d", Seq: 42, TS: 1767225600123})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := protocol.DecodeServer(frame)
			var a natter.Ack
			if err != nil || !protocol.DecodeAck(f.Data, &a) {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w struct {
				T    string          `json:"t"`
				ID   string          `json:"id"`
				Data json.RawMessage `json:"data"`
			}
			var a natter.Ack
			if json.Unmarshal(frame, &w) != nil || json.Unmarshal(w.Data, &a) != nil {
				b.Fatal("not decoded")
			}
		}
	})
}
