package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/internal/testbin"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// binary is the natter binary built once for the process tests.
var binary string

func TestMain(m *testing.M) { testbin.Main(m, ".", &binary) }

// proc is a running natter process.
type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	ready  map[string]string // key=value pairs of the "natter ready" line
	exited chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var kv = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// startDev starts natter dev on free ports under data and waits for its
// ready line.
func startDev(t *testing.T, data string, extra ...string) *proc {
	t.Helper()
	return startProc(t, append([]string{"dev", "--data", data, "--http", "127.0.0.1:0", "--nats-port", "-1"}, extra...)...)
}

// startProc starts the natter binary with args and waits for its
// "natter ready" line, whose key=value pairs it keeps in ready.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); pw.Close(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	readyCh := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="natter ready"`) {
				m := map[string]string{}
				for _, g := range kv.FindAllStringSubmatch(sc.Text(), -1) {
					m[g[1]] = strings.Trim(g[2], `"`)
				}
				readyCh <- m
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case p.ready = <-readyCh:
	case <-p.exited:
		t.Fatalf("natter %s exited before ready: %v\n%s", args[0], p.err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("natter %s not ready after 60s:\n%s", args[0], p.stderr)
	}
	return p
}

func (p *proc) url(path string) string { return "http://" + p.ready["http"] + path }

// stop sends SIGTERM and returns the exit code and how long the exit took.
func (p *proc) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("natter did not exit 30s after SIGTERM:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDevReadyStreamsAndStore(t *testing.T) {
	t.Parallel()
	p := startDev(t, t.TempDir())

	if code, body := get(t, p.url("/readyz")); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	if code, _ := get(t, p.url("/healthz")); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	code, metrics := get(t, p.url("/metrics"))
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "natter_edge_connections", "natter_worker_in_flight"} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Fatalf("/metrics (%d) lacks %s", code, want)
		}
	}

	js := testenv.JetStream(t, testenv.Connect(t, p.ready["nats"]))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{subjects.StreamMsgs, subjects.StreamDLQ} {
		if _, err := js.Stream(ctx, s); err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
	}
	for _, b := range []string{subjects.BucketCursors, subjects.BucketPresence} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
	}
	for _, c := range []string{subjects.ConsumerPersist, subjects.ConsumerFanout} {
		if _, err := js.Consumer(ctx, subjects.StreamMsgs, c); err != nil {
			t.Fatalf("consumer %s: %v", c, err)
		}
	}

	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(p.ready["mongo"]))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	if err := mc.Ping(ctx, nil); err != nil {
		t.Fatalf("mongo ping on the embedded store: %v", err)
	}

	if code, d := p.stop(t); code != 0 || d > 10*time.Second {
		t.Fatalf("SIGTERM: exit %d after %v\n%s", code, d, p.stderr)
	}
}

func TestStreamsApplyIdempotent(t *testing.T) {
	t.Parallel()
	p := startDev(t, t.TempDir())
	for i, want := range []string{"0 change(s)", "0 change(s)"} {
		out, err := exec.Command(binary, "streams", "apply", "--nats-url", p.ready["nats"]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("apply #%d: %v\n%s", i+1, err, out)
		}
	}
	// A changed setting is an update, and applying it again is no change.
	out, err := exec.Command(binary, "streams", "apply", "--nats-url", p.ready["nats"], "--hot-tier", "500").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "updated stream MSGS") {
		t.Fatalf("apply with new hot tier: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "streams", "apply", "--nats-url", p.ready["nats"], "--hot-tier", "500").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 change(s)") {
		t.Fatalf("apply again: %v\n%s", err, out)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "natter ") {
		t.Fatalf("version: %v %s", err, out)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on, for an unreachable NATS.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := l.Addr().String()
	l.Close()

	cases := []struct {
		name string
		args []string
		want string // the setting the one line must name
	}{
		{"unknown flag", []string{"dev", "--no-such-flag"}, "no-such-flag"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"malformed nats url", []string{"dev", "--nats-url", "http//bad url"}, "--nats-url (NATTER_NATS_URL)"},
		{"malformed mongo uri", []string{"dev", "--nats-port", "-1", "--mongo-uri", "notmongo://x"}, "--mongo-uri (NATTER_MONGO_URI)"},
		{"unwritable data dir", []string{"dev", "--data", filepath.Join(notDir, "data"), "--http", "127.0.0.1:0", "--nats-port", "-1"}, "--data (NATTER_DATA)"},
		{"http port in use", []string{"dev", "--data", t.TempDir(), "--http", busy.Addr().String(), "--nats-port", "-1"}, "--http (NATTER_HTTP_ADDR)"},
		{"nats port in use", []string{"dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", portOf(busy.Addr())}, "--nats-port (NATTER_NATS_PORT)"},
		{"nats unreachable", []string{"edge", "--nats-url", "nats://" + deadAddr, "--http", "127.0.0.1:0", "--jwt-secret", strings.Repeat("s", 32)}, "--nats-url (NATTER_NATS_URL)"},
		{"edge without nats url", []string{"edge", "--http", "127.0.0.1:0", "--jwt-secret", strings.Repeat("s", 32)}, "--nats-url (NATTER_NATS_URL)"},
		{"unknown role", []string{"worker", "--nats-url", "nats://" + deadAddr, "--roles", "persist,bogus"}, "--roles (NATTER_ROLES)"},
		{"bad env duration", []string{"dev", "--data", t.TempDir()}, "NATTER_LAME_DUCK"},
		{"gc percent not a number", []string{"dev", "--data", t.TempDir(), "--gc-percent", "lots"}, "--gc-percent (NATTER_GC_PERCENT)"},
		{"memory limit without a unit Go knows", []string{"worker", "--nats-url", "nats://" + deadAddr, "--memory-limit", "1GB"}, "--memory-limit (NATTER_MEMORY_LIMIT)"},
		{"otlp endpoint not a url", []string{"dev", "--data", t.TempDir(), "--otlp-endpoint", "collector:4318"}, "--otlp-endpoint (NATTER_OTLP_ENDPOINT)"},
		{"trace sample out of range", []string{"worker", "--nats-url", "nats://" + deadAddr, "--trace-sample", "2"}, "--trace-sample"},
		{"nats: client port in use", []string{"nats", "--store", t.TempDir(), "--port", portOf(busy.Addr()), "--http-port", "0"}, "--port (NATTER_NATSD_PORT)"},
		{"nats: cluster port in use", []string{"nats", "--store", t.TempDir(), "--port", "-1", "--http-port", "0", "--cluster-port", portOf(busy.Addr()), "--routes", "nats://127.0.0.1:1"}, "--cluster-port (NATTER_NATSD_CLUSTER_PORT)"},
		{"nats: cluster port without routes", []string{"nats", "--store", t.TempDir(), "--port", "-1", "--http-port", "0", "--cluster-port", deadPort(t)}, "--routes (NATTER_NATSD_ROUTES)"},
		{"nats: malformed route", []string{"nats", "--store", t.TempDir(), "--port", "-1", "--http-port", "0", "--cluster-port", deadPort(t), "--routes", "nats://nohostport"}, "--routes (NATTER_NATSD_ROUTES)"},
		{"nats: missing config file", []string{"nats", "--config", filepath.Join(t.TempDir(), "none.conf")}, "--config (NATTER_NATSD_CONFIG)"},
		{"store: port in use", []string{"store", "--dir", t.TempDir(), "--listen", busy.Addr().String()}, "--listen (NATTER_STORE_LISTEN)"},
		{"store: unwritable dir", []string{"store", "--dir", filepath.Join(notDir, "mongo"), "--listen", "127.0.0.1:0"}, "--dir (NATTER_STORE_DIR)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, tc.args...)
			if tc.name == "bad env duration" {
				cmd.Env = append(os.Environ(), "NATTER_LAME_DUCK=soon")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("still running after 30s (half-started?):\n%s", stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", code, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if lines := strings.Split(out, "\n"); len(lines) != 1 && tc.name != "unknown command" {
				t.Fatalf("want one line, got %d:\n%s", len(lines), out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output does not name %q:\n%s", tc.want, out)
			}
		})
	}
}

// deadPort is a free loopback port (nothing listens on it when it returns).
func deadPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return portOf(l.Addr())
}

func portOf(a net.Addr) string { return fmt.Sprint(a.(*net.TCPAddr).Port) }
