package client

import (
	"testing"

	"github.com/natter-im/natter"
)

// BenchmarkDeliveryPath: a push through the client's delivery state (in
// order, one in 16 arriving early and held back) and the pump to the
// Messages channel, without a socket.
func BenchmarkDeliveryPath(b *testing.B) {
	cfg := Config{}.withDefaults()
	c := &Client{
		cfg: cfg, log: cfg.Logger,
		msgs: make(chan natter.Message, cfg.Buffer),
		wake: make(chan struct{}, 1), qsig: make(chan struct{}, 1), room: make(chan struct{}, 1),
		quit: make(chan struct{}),
	}
	c.d.init(nil)
	c.d.first = true
	c.wg.Add(1)
	go c.pump()
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		for range b.N {
			<-c.msgs
		}
		close(done)
	}()
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
	b.StopTimer()
	close(c.quit)
	c.wg.Wait()
}
