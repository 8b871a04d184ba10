package bench_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/natter-im/natter/bench"
)

// TestGenCPUProfile: with --gen-cpuprofile FILE each generator child writes
// a CPU profile to FILE.<n>.
func TestGenCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "gen.prof")
	r := run(t, bench.Config{Scenario: "fanout", Members: 3, Duration: time.Second, Procs: 1, NoBaseline: true, GenCPUProfile: prof})
	if r.Delivered == 0 || r.Delivered != 3*r.Sent {
		t.Errorf("sent %d delivered %d", r.Sent, r.Delivered)
	}
	b, err := os.ReadFile(prof + ".0")
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is gzipped protobuf.
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("%s.0 is not a profile: %d bytes starting %q", prof, len(b), b[:min(len(b), 8)])
	}
	if _, err := os.Stat(prof + ".1"); !os.IsNotExist(err) {
		t.Errorf("%s.1: %v, want no second profile for one generator", prof, err)
	}
}

// TestTrace: with --trace FILE the bench writes a Go execution trace of
// its process over the measured window, one file per window.
func TestTrace(t *testing.T) {
	tr := filepath.Join(t.TempDir(), "relay.trace")
	r := run(t, bench.Config{Scenario: "relay", Conns: 2, Rate: 50, Duration: time.Second, Procs: 1, NoBaseline: true, Trace: tr})
	if r.Delivered == 0 {
		t.Errorf("sent %d delivered %d", r.Sent, r.Delivered)
	}
	b, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	// Every execution trace starts with this header.
	if !bytes.HasPrefix(b, []byte("go 1.")) || !bytes.Contains(b[:16], []byte(" trace")) {
		t.Errorf("%s is not an execution trace: %d bytes starting %q", tr, len(b), b[:min(len(b), 16)])
	}
	if _, err := os.Stat(tr + ".1"); !os.IsNotExist(err) {
		t.Errorf("%s.1: %v, want no second trace for one window", tr, err)
	}
}
