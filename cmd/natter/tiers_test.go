package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

// startTier starts "natter edge" or "natter worker" and waits for its ready
// line, returning the process and its HTTP (or admin) address.
func startTier(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); pw.Close(); close(p.exited) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.exited })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="natter ready"`) {
				for _, g := range kv.FindAllStringSubmatch(sc.Text(), -1) {
					if g[1] == "http" {
						addr <- g[2]
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		return p, a
	case <-p.exited:
		t.Fatalf("%v exited: %v\n%s", args, p.err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%v not ready:\n%s", args, p.stderr)
	}
	return nil, ""
}

// TestSeparateTiers runs natter edge and natter worker as their own
// processes against a natter dev's NATS and store: each serves /healthz,
// /readyz and /metrics, and a SIGTERM stops each with exit 0.
func TestSeparateTiers(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dev := startDev(t, data)
	secret := strings.Repeat("k", 40)
	worker, waddr := startTier(t, "worker", "--nats-url", dev.ready["nats"], "--mongo-uri", dev.ready["mongo"], "--admin", "127.0.0.1:0", "--roles", "persist,fanout")
	edge, eaddr := startTier(t, "edge", "--nats-url", dev.ready["nats"], "--http", "127.0.0.1:0", "--jwt-secret", secret)
	for name, addr := range map[string]string{"worker": waddr, "edge": eaddr} {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, body := get(t, "http://"+addr+path); code != 200 {
				t.Fatalf("%s %s = %d %s", name, path, code, body)
			}
		}
	}
	if _, m := get(t, "http://"+waddr+"/metrics"); !strings.Contains(m, `natter_worker_in_flight{role="persist"}`) {
		t.Fatal("worker metrics lack the persist role")
	}
	for name, p := range map[string]*proc{"worker": worker, "edge": edge} {
		if code, d := p.stop(t); code != 0 || d > 10*time.Second {
			t.Fatalf("%s SIGTERM: exit %d after %v\n%s", name, code, d, p.stderr)
		}
	}
}

// TestSecondSignalForcesExit: a shutdown held up by a long lame-duck
// interval ends at once on a second signal (one at least repeatWindow after
// the first; TestTaskRunStops has a repeat within it).
func TestSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startDev(t, data, "--lame-duck", "60s")
	tok := mint(t, data, "alice")
	for i := 0; i < 2; i++ { // the second socket waits 30s in the lame duck
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.ready["http"]+protocol.Path, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	// Wait until the shutdown has begun, then signal again once the window in
	// which a repeat counts as the same stop request is over.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := p.stderr.String(); !strings.Contains(s, "lame duck") {
			return fmt.Errorf("no lame duck:\n%s", s)
		}
		return nil
	})
	// natter counts the window from when it got the first signal, which on a
	// loaded machine is later than first: wait the whole window from the
	// lame-duck line, which it logs after that.
	time.Sleep(repeatWindow + 100*time.Millisecond)
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not force an exit")
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(p.stderr.String(), "forcing exit") {
		t.Fatalf("exit %d after %v\n%s", code, time.Since(start), p.stderr)
	}
}

// TestRepeatSignalIsSameStop: a second signal within repeatWindow of the
// first is the same stop request, not a forced exit: Ctrl-C under "go tool
// task run" reaches natter from the terminal and again from go-task. The
// shutdown (held up by a lame-duck interval) runs to its end and exits 0.
func TestRepeatSignalIsSameStop(t *testing.T) {
	t.Parallel()
	// The second signal must go out inside the window; on a machine so busy
	// that the first one's log line comes later than that, try again.
	for attempt := 1; attempt <= 3; attempt++ {
		data := t.TempDir()
		p := startDev(t, data, "--lame-duck", "3s")
		tok := mint(t, data, "alice")
		for i := 0; i < 2; i++ { // the second socket waits 1.5s in the lame duck
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.ready["http"]+protocol.Path, http.Header{"Authorization": {"Bearer " + tok}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			// The hello goes out once the session is in the edge's hub:
			// before it, a stop finds no session to hold the lame duck.
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := ws.ReadMessage(); err != nil {
				t.Fatalf("no hello: %v", err)
			}
		}
		first := time.Now()
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if s := p.stderr.String(); !strings.Contains(s, "lame duck") {
				return fmt.Errorf("no lame duck:\n%s", s)
			}
			return nil
		})
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		if time.Since(first) > repeatWindow/2 {
			t.Logf("attempt %d: second signal %v after the first, too late to tell", attempt, time.Since(first))
			_ = p.cmd.Process.Kill()
			<-p.exited
			continue
		}
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("natter did not exit 30s after the signals:\n%s", p.stderr)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(p.stderr.String(), "forcing exit") || !strings.Contains(p.stderr.String(), `msg="natter stopped"`) {
			t.Fatalf("exit %d:\n%s", code, p.stderr)
		}
		return
	}
	t.Fatal("3 attempts, each too slow to send the second signal within the window")
}
