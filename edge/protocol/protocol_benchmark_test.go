package protocol_test

import (
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

func BenchmarkDecodeSend(b *testing.B) {
	frame := []byte(`{"op":"send","id":"2","conv":"g_7f3a9c","cmid":"c-1001","body":"hi all, see you at nine","type":"text"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := protocol.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	frame := []byte(`{"op":"ack","id":"4","conv":"g_7f3a9c","seq":42}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPush(b *testing.B) {
	msg := []byte(`{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"g_7f3a9c","seq":42,"from":"alice","cmid":"c-1001","body":"hi all","ts":1767225600000}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = protocol.Push(msg)
	}
}

func BenchmarkResultAck(b *testing.B) {
	ack := natter.Ack{ID: "m_K5QWY3DFMZXGC4TBNFZGK2LMNQ", Conv: "g_7f3a9c", Seq: 42, TS: 1767225600000}
	b.ReportAllocs()
	for b.Loop() {
		_ = protocol.Result("2", ack)
	}
}

func BenchmarkErr(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = protocol.Err("2", protocol.CodeNotMember, "not a member of g_7f3a9c")
	}
}
