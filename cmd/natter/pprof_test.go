package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter"
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

// TestOpsMetrics: every process exports the checks behind /readyz, and a
// process with worker roles the state of every role's consumer and of
// natter's streams (what the alert rules and the dashboard in infra/ read).
func TestOpsMetrics(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dev := startDev(t, data)
	_, eaddr := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", strings.Repeat("k", 40))
	_, m := get(t, dev.url("/metrics"))
	for _, want := range []string{
		`natter_check_up{check="nats"} 1`, `natter_check_up{check="jetstream"} 1`, `natter_check_up{check="store"} 1`,
		`natter_check_seconds{check="store"}`, `natter_nats_reconnects_total 0`,
		`natter_consumer_pending{consumer="PERSIST",role="persist",stream="MSGS"} 0`,
		`natter_consumer_ack_pending{consumer="FANOUT",role="fanout",stream="MSGS"} 0`,
		`natter_consumer_ack_floor{consumer="THUMBS",role="thumbs",stream="ATTACH"} 0`,
		`natter_consumer_redelivered{consumer="INGEST",role="ingest",stream="INGEST"} 0`,
		`natter_stream_messages{stream="DLQ"} 0`, `natter_stream_last_seq{stream="MSGS"} 0`, `natter_stream_bytes{stream="EVENTS"}`,
		`process_open_fds`, `process_max_fds`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("dev /metrics lacks %s", want)
		}
	}

	// Three sends: the log's last sequence and the PERSIST ack floor (what
	// the archive-lag alerts subtract) both reach 3 once persist archived
	// them.
	tok := mint(t, data, "alice")
	code, b := call(t, "POST", dev.url("/v1/conversations"), tok, `{"kind":"group","name":"ops","members":["bob"]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	var conv natter.Conversation
	_ = json.Unmarshal(b, &conv)
	for i := range 3 {
		if code, b := call(t, "POST", dev.url("/v1/conversations/"+conv.ID+"/messages"), tok, fmt.Sprintf(`{"cmid":"m%d","body":"x"}`, i)); code != 201 {
			t.Fatalf("send: %d %s", code, b)
		}
	}
	want := []string{`natter_stream_last_seq{stream="MSGS"} 3`, `natter_consumer_ack_floor{consumer="PERSIST",role="persist",stream="MSGS"} 3`,
		`natter_consumer_pending{consumer="PERSIST",role="persist",stream="MSGS"} 0`}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, m = get(t, dev.url("/metrics"))
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(m, w) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 sends, /metrics lacks %v:\n%s", missing, grepLines(m, "natter_stream_last_seq|natter_consumer_"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	_, m = get(t, "http://"+eaddr+"/metrics")
	if !strings.Contains(m, `natter_check_up{check="jetstream"} 1`) || strings.Contains(m, `check="store"`) || strings.Contains(m, "natter_consumer_pending") {
		t.Errorf("edge /metrics: want the nats and jetstream checks only, no consumers:\n%s", grepLines(m, "natter_check|natter_consumer"))
	}
}

func grepLines(s, re string) string {
	var out []string
	r := regexp.MustCompile(re)
	for _, l := range strings.Split(s, "\n") {
		if r.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
