package test

import (
	"testing"
	"time"

	"github.com/natter-im/natter/edge/protocol"
)

// TestIdleConnectionClosed: a client that stops answering pings is closed
// with 4009 after twice the ping interval.
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	ec.PingInterval = 100 * time.Millisecond
	m := newMesh(t, meshOpts{edge: &ec})
	c := mustDial(t, m.dev, "sleepy")
	// The client reads (so it sees the close) but never answers a ping.
	c.conn.SetPingHandler(func(string) error { return nil })
	code, _ := c.closeCode()
	if code != protocol.CloseIdleTimeout {
		t.Fatalf("close %d, want %d", code, protocol.CloseIdleTimeout)
	}
}
