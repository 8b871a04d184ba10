package test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// TestSlowConsumerIsCut: a member that stops reading its socket is closed
// with 4008 once its send queue is full, and the other member keeps
// receiving every message meanwhile.
func TestSlowConsumerIsCut(t *testing.T) {
	t.Parallel()
	ec := edgeConfig()
	// Small, so that the slow member is cut soon, but above the 16 frames
	// of 60 KiB that one delivery batch carries (1 MiB NATS messages): a
	// member that reads (the sender reads its replies and its own pushes)
	// may have a batch queued behind the one being written, and a reply
	// behind that.
	ec.SendQueue = 48
	m := newMesh(t, meshOpts{edge: &ec})
	sender := mustDial(t, m.dev, "sender")
	fast := mustDial(t, m.dev, "fast")
	slow := mustDial(t, m.dev, "slow") // never reads until the end
	group := sender.createGroup("g", "fast", "slow")

	body := strings.Repeat("z", 60<<10)
	const n = 300 // ~18 MB: more than the socket buffers plus the queue
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; {
			f, err := fast.read()
			if err != nil {
				done <- fmt.Errorf("fast reader after %d: %v", i, err)
				return
			}
			if f.T == protocol.FrameConv {
				continue // the push that says fast was added to the group
			}
			if f.T != protocol.FrameMsg || f.Message.Seq != uint64(i+1) {
				done <- fmt.Errorf("fast reader: frame %d is %+v", i, f)
				return
			}
			i++
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		sender.write(fmt.Sprintf(`{"op":"send","id":"s%d","conv":%q,"cmid":"c%d","body":%q}`, i, group.ID, i, body))
		if f := sender.reply(fmt.Sprint("s", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fast member did not get every message: the slow one held it up")
	}
	// The close frame with 4008 reaches a client that reads again within
	// the write timeout; one that stays stuck only sees its socket end
	// (1006). Either way the edge counted a slow-consumer cut.
	code, reason := slow.closeCode()
	if code != protocol.CloseSlowConsumer && code != websocket.CloseAbnormalClosure {
		t.Fatalf("slow member: close %d %q, want %d", code, reason, protocol.CloseSlowConsumer)
	}
	resp, err := http.Get("http://" + m.dev.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "natter_edge_slow_consumers_total 1") {
		t.Fatalf("slow consumer not counted:\n%s", grepLines(string(b), "natter_edge_slow"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
