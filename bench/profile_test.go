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
