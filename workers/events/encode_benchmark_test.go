package events_test

import (
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/events"
)

var benchMsg = natter.Message{ID: "m_k5qwy3dfmzxgc4tbnfzgk2lmnq", Conv: "d_alice_bob", Seq: 42, From: "alice", Cmid: "c-1001",
	Body: "a message body of about the size the relay benchmark sends, 128 bytes: lorem ipsum dolor sit amet, consectetur adipiscing", TS: 1767225600000}

// BenchmarkMessageMsg is the events role's encoding of one log entry.
func BenchmarkMessageMsg(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.MessageMsg(&benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageEventMsg is the same through encoding/json (the role's
// path before MessageMsg).
func BenchmarkMessageEventMsg(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ev, err := events.MessageEvent(benchMsg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := events.Msg(ev); err != nil {
			b.Fatal(err)
		}
	}
}
