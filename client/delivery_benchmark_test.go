package client

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// benchClient is a client with its delivery state and pump running and
// no socket; conv starts after cursor.
func benchClient(b *testing.B, conv string, cursor uint64) *Client {
	cfg := Config{}.withDefaults()
	c := &Client{
		cfg: cfg, log: cfg.Logger,
		msgs: make(chan natter.Message, cfg.Buffer),
		wake: make(chan struct{}, 1), qsig: make(chan struct{}, 1), room: make(chan struct{}, 1),
		quit: make(chan struct{}),
	}
	c.d.init(map[string]uint64{conv: cursor})
	c.d.first = true
	c.wg.Add(1)
	go c.pump()
	b.Cleanup(func() {
		close(c.quit)
		c.wg.Wait()
	})
	return c
}

// drainN reads n messages from c's Messages channel; the result is closed
// when it has.
func drainN(c *Client, n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range n {
			<-c.msgs
		}
		close(done)
	}()
	return done
}

// BenchmarkDeliveryPath: a push through the client's delivery state (in
// order, one in 16 arriving early and held back) and the pump to the
// Messages channel, without a socket.
func BenchmarkDeliveryPath(b *testing.B) {
	c := benchClient(b, "g_bench", 0)
	b.ReportAllocs()
	b.ResetTimer()
	done := drainN(c, b.N)
	m := natter.Message{ID: "m_x", Conv: "g_bench", From: "alice", Body: "benchmark message body"}
	for i := 0; i < b.N; i++ {
		seq := uint64(i + 1)
		if seq%16 == 0 && i+1 < b.N { // swap with its successor
			m.Seq = seq + 1
			c.onPush(&m)
			i++
		}
		m.Seq = seq
		c.onPush(&m)
		c.waitRoom()
	}
	<-done
}

// BenchmarkPushPath: what the reader does with a push frame as the edge
// writes it (the fanout bench's: a 128-byte body), from the frame's bytes
// to the message read from the Messages channel by the application: the
// decode, the delivery state, the hand-over. The socket read is not in it.
func BenchmarkPushPath(b *testing.B) {
	const conv = "g_7f3a9c0e1d2b"
	// Seqs of 16 digits, so that each frame is the template with its seq
	// digits overwritten in place.
	const first = uint64(1e15)
	body := "1767225600123456789 " + strings.Repeat("x", 108)
	tmpl := protocol.Push([]byte(`{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"` + conv + `","seq":` +
		strconv.FormatUint(first, 10) + `,"from":"bb1c2d3f0","cmid":"Zm9vYmFyYmF6cXV4cXV1eA","body":"` + body + `","ts":1767225600123}`))
	at := strings.Index(string(tmpl), `"seq":`) + len(`"seq":`)
	c := benchClient(b, conv, first-1)
	cn := &conn{c: c, pending: map[string]chan *protocol.ServerFrame{}}
	var m natter.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl)))
	b.ResetTimer()
	done := drainN(c, b.N)
	for i := range b.N {
		strconv.AppendUint(tmpl[at:at], first+uint64(i), 10)
		cn.handle(tmpl, &m)
	}
	<-done
	b.StopTimer()
	if s := c.Stats(); s.Delivered != uint64(b.N) {
		b.Fatalf("delivered %d of %d", s.Delivered, b.N)
	}
}

// BenchmarkMessagesChannels: the hand-over of a message through the
// Messages channels of 1,000 clients in one process (the fanout bench's
// generator), one message into each in turn, then each taken out: what a
// Message (248 bytes) costs to copy into a slot and out again, by the
// channels' capacity. With 1,024 slots the slots in use are spread over
// 254 MB and miss the caches; with 64 they stay within 16 MB.
func BenchmarkMessagesChannels(b *testing.B) {
	for _, buffer := range []int{64, 1024} {
		b.Run(fmt.Sprintf("buffer=%d", buffer), func(b *testing.B) {
			const clients = 1000
			chs := make([]chan natter.Message, clients)
			for i := range chs {
				chs[i] = make(chan natter.Message, buffer)
			}
			m := natter.Message{ID: "m_x", Conv: "g_bench", From: "alice", Body: "benchmark message body", Seq: 1}
			var sum uint64
			b.ResetTimer()
			for i := range b.N {
				chs[i%clients] <- m
				if i%clients == clients-1 || i == b.N-1 {
					for _, ch := range chs[:i%clients+1] {
						sum += (<-ch).Seq
					}
				}
			}
			if sum != uint64(b.N) {
				b.Fatalf("took %d of %d", sum, b.N)
			}
		})
	}
}
