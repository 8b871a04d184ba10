package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
)

// TestPprof: natter dev serves the Go runtime profiles under /debug/pprof/
// by default; natter edge only with --pprof, natter worker (on its admin
// listener) likewise; without the flag the path is 404.
func TestPprof(t *testing.T) {
	t.Parallel()
	dev := startDev(t, t.TempDir())
	secret := strings.Repeat("k", 40)
	_, eaddr := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret)
	_, waddr := startTier(t, "worker", "--nats-url", dev.ready["nats"], "--admin", "127.0.0.1:0", "--roles", "fanout", "--pprof")
	_, paddr := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret, "--pprof")

	for name, base := range map[string]string{"dev": dev.url(""), "worker --pprof": "http://" + waddr, "edge --pprof": "http://" + paddr} {
		code, body := get(t, base+"/debug/pprof/heap")
		if code != 200 {
			t.Fatalf("%s: GET /debug/pprof/heap = %d %.200s", name, code, body)
		}
		// A profile is gzip-compressed protobuf (profile.proto).
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: /debug/pprof/heap is not a gzip profile: %v (%.100q)", name, err, body)
		}
		raw, err := io.ReadAll(zr)
		if err != nil || len(raw) == 0 {
			t.Fatalf("%s: /debug/pprof/heap: %d bytes, %v", name, len(raw), err)
		}
		if code, idx := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(idx, "goroutine") {
			t.Fatalf("%s: GET /debug/pprof/ = %d %.200s", name, code, idx)
		}
		if code, g := get(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 || !bytes.Contains([]byte(g), []byte("goroutine profile:")) {
			t.Fatalf("%s: GET /debug/pprof/goroutine?debug=1 = %d %.200s", name, code, g)
		}
	}
	for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/"} {
		if code, body := get(t, "http://"+eaddr+path); code != 404 {
			t.Fatalf("edge without --pprof: GET %s = %d %.200s; want 404", path, code, body)
		}
	}
	if code, body := get(t, "http://"+eaddr+"/metrics"); code != 200 {
		t.Fatalf("edge without --pprof: GET /metrics = %d %.200s", code, body)
	}
}
