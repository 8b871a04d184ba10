package protocol_test

import (
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
