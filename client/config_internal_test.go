package client

import (
	"testing"
	"unsafe"

	"github.com/natter-im/natter"
)

// TestDefaultBufferMemory: the default Messages channel of a client holds
// at most 32 KiB of slots (a process may hold thousands of clients; the
// client's queue, not the channel, absorbs a slow application).
func TestDefaultBufferMemory(t *testing.T) {
	t.Parallel()
	c := Config{}.withDefaults()
	if n := uintptr(c.Buffer) * unsafe.Sizeof(natter.Message{}); n > 32<<10 {
		t.Fatalf("default Buffer %d: %d bytes of channel slots per client, want <= 32 KiB", c.Buffer, n)
	}
}
