package bench

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestPersistDrainCounted: a PERSIST backlog left at the end of a relay
// window is waited for until it is stored, and the server CPU of storing it
// is added to the window's in the figure per message with the drain. The
// backlog is built with PERSIST paused, as the relay leaves one flat out.
func TestPersistDrainCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{DataDir: t.TempDir(), Quiet: true}.withDefaults()
	cfg.stderr = io.Discard
	tg, err := startTarget(ctx, &cfg, targetOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.close()
	if _, err := tg.js.PauseConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist, time.Now().Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	l, err := msglog.New(ctx, tg.js.Conn(), tg.js, msglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if _, err := l.Append(ctx, msglog.Send{Conv: "d_drain_" + strconv.Itoa(i%10), From: "alice", Cmid: "c" + strconv.Itoa(i), Body: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	backlog := tg.persistPending(ctx)
	if backlog != n {
		t.Fatalf("backlog %d with PERSIST paused, want %d", backlog, n)
	}
	// The window's figures: 100 us of server CPU per message.
	d := &driven{serverEnd: serverCPU(tg)}
	c := &CPU{Server: "this process, getrusage", Per: "msg", Count: n, ServerUs: 100 * n}
	c.fill(1)
	if _, err := tg.js.ResumeConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: cfg, stderr: io.Discard}
	r.persistDrain(ctx, tg, d, c, backlog, "test")
	pd := c.PersistDrain
	if pd == nil || pd.Skipped != "" || pd.Backlog != n || pd.Seconds < 0 || pd.ServerUs <= 0 {
		t.Fatalf("persist drain %+v, want the backlog of %d drained and its CPU measured", pd, n)
	}
	if want := round3((c.ServerUs + pd.ServerUs) / n); pd.ServerUsPerMsg != want || pd.ServerUsPerMsg <= c.ServerUsPerMsg {
		t.Errorf("with the drain %v us/msg, want (window %v + drain %v us) / %d = %v", pd.ServerUsPerMsg, c.ServerUs, pd.ServerUs, n, want)
	}
	if b := tg.persistPending(ctx); b != 0 {
		t.Errorf("backlog %d after the drain, want 0", b)
	}
	if line := pd.line(c); !strings.Contains(line, "drained in") || !strings.Contains(line, "500 messages") {
		t.Errorf("report line %q", line)
	}
}
