package edge

import (
	"strconv"
	"testing"

	natter "github.com/natter-im/natter"
)

// BenchmarkFrameSendBatch8 is BenchmarkFrameSend with the Go SDK's SendAll
// shape: 8 sends to one conversation written at once, then their 8 replies
// read (the bench relay's default --window 8). An op is one send: compare
// its cpu-ns/op with BenchmarkFrameSend's.
func BenchmarkFrameSendBatch8(b *testing.B) {
	e := newSendEdge(b, func(string) {})
	s, client := dialSession(b, e, "alice")
	go s.readLoop()
	c := newRawClient(client.NetConn())
	conv := natter.DirectID("alice", "bob")
	const batch = 8
	n := 0
	var buf []byte
	round := func() {
		buf = buf[:0]
		for range batch {
			n++
			buf = append(buf, maskedFrame([]byte(`{"op":"send","id":"r`+strconv.Itoa(n)+`","conv":"`+conv+`","cmid":"c`+strconv.Itoa(n)+`","body":"hello bob, how are you?","first":true}`))...)
		}
		if _, err := c.nc.Write(buf); err != nil {
			b.Fatal(err)
		}
		for range batch {
			res, err := c.next()
			if err != nil {
				b.Fatal(err)
			}
			if len(res) < 10 || string(res[:9]) != `{"t":"res` {
				b.Fatalf("reply %s", res)
			}
		}
	}
	round()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for range (b.N + batch - 1) / batch {
		round()
	}
	reportCPU(b, cpu)
}
