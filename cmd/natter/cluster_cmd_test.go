package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/cmd/natter/cluster"
)

// runNatter runs the binary with args to completion (at most 3 minutes) and
// returns its exit code, stdout and stderr.
func runNatter(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("natter %v: %v\n%s", args, ctx.Err(), stderr.String())
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestClusterUpStatusDown runs natter cluster up (combined workers), then
// status and down: up prints every process with its pid, address and log,
// the URLs and a token command that works; the processes outlive up in
// their own sessions; a second up on the same dir is refused; down stops
// every process and removes the dir.
func TestClusterUpStatusDown(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { runNatter(t, "cluster", "down", "--dir", dir, "--stop-timeout", "20s") })

	code, out, errOut := runNatter(t, "cluster", "up", "--dir", dir, "--combined")
	if code != 0 {
		t.Fatalf("up: exit %d\n%s\n%s", code, out, errOut)
	}
	st, err := cluster.LoadState(cluster.StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"nats-1", "nats-2", "nats-3", "store", "edge-1", "edge-2", "worker-1", "worker-2"}
	if len(st.Procs) != len(names) {
		t.Fatalf("state lists %d processes, want %d:\n%s", len(st.Procs), len(names), out)
	}
	lines := strings.Split(out, "\n")
	for i, name := range names {
		p := st.Procs[i]
		logPath := filepath.Join(dir, "logs", name+".log")
		if p.Name != name || p.LogPath != logPath || !p.Alive() {
			t.Fatalf("process %d: %+v (alive %v), want %s", i, p, p.Alive(), name)
		}
		// Detached: a session of its own, alive after up exited.
		if pgid, err := syscall.Getpgid(p.PID); err != nil || pgid != p.PID {
			t.Fatalf("%s: pgid %d (%v), want its own %d", name, pgid, err, p.PID)
		}
		if _, err := os.Stat(logPath); err != nil {
			t.Fatal(err)
		}
		row := strings.Fields(lines[i+1])
		if len(row) < 5 || row[0] != name || row[1] != p.Kind || row[2] != strconv.Itoa(p.PID) || row[len(row)-1] != logPath || !strings.Contains(lines[i+1], p.Addr) {
			t.Fatalf("table row %d: %q (want %s, pid %d, %s, %s)", i, lines[i+1], name, p.PID, p.Addr, logPath)
		}
	}
	for _, want := range []string{"NATS:     " + st.NATSURL, "MongoDB:  " + st.MongoURI, st.EdgeURLs[0], st.EdgeURLs[1],
		"natter token --jwt-secret-file " + st.SecretFile, "natter cluster down --dir " + dir} {
		if !strings.Contains(out, want) {
			t.Fatalf("up output lacks %q:\n%s", want, out)
		}
	}

	// The printed token command mints tokens the edges accept.
	code, tok, errOut := runNatter(t, "token", "--jwt-secret-file", st.SecretFile, "--user", "alice")
	if code != 0 {
		t.Fatalf("token: %d %s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, url := range st.EdgeURLs {
		c, err := client.Dial(ctx, client.Config{URLs: []string{url}, Token: strings.TrimSpace(tok)})
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		if _, _, err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}

	// A second up on a running cluster is refused.
	if code, _, errOut := runNatter(t, "cluster", "up", "--dir", dir); code != 2 || !strings.Contains(errOut, "holds a running cluster") {
		t.Fatalf("second up: exit %d\n%s", code, errOut)
	}

	code, out, errOut = runNatter(t, "cluster", "status", "--dir", dir)
	if code != 0 || !strings.Contains(out, "8 of 8 processes running") {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, name := range names {
		if !strings.Contains(out, name+" ") || !strings.Contains(out, filepath.Join(dir, "logs", name+".log")) {
			t.Fatalf("status lacks %s:\n%s", name, out)
		}
	}

	code, out, errOut = runNatter(t, "cluster", "down", "--dir", dir)
	if code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, p := range st.Procs {
		if !strings.Contains(out, p.Name) || p.Alive() {
			t.Fatalf("%s (pid %d) not stopped (alive %v):\n%s", p.Name, p.PID, p.Alive(), out)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("down left %s (%v)", dir, err)
	}
	if code, _, errOut := runNatter(t, "cluster", "status", "--dir", dir); code != 2 || !strings.Contains(errOut, "no cluster in") {
		t.Fatalf("status after down: exit %d %s", code, errOut)
	}
}
