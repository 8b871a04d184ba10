package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestDataDirLock: a second natter dev on the data dir of a running one
// exits at once (2) naming the dir and the holder's pid; once the first is
// killed with SIGKILL (its lock file stays behind), a new one starts.
func TestDataDirLock(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	first := startDev(t, data)

	start := time.Now()
	code, _, stderr := runBinary(t, nil, "dev", "--data", data, "--http", "127.0.0.1:0", "--nats-port", "-1")
	out := strings.TrimSpace(stderr)
	if code != 2 {
		t.Fatalf("second natter dev on %s: exit %d, want 2\n%s", data, code, out)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("second natter dev took %v to fail", took)
	}
	abs, _ := filepath.Abs(data)
	for _, want := range []string{"--data (NATTER_DATA)", abs, fmt.Sprintf("process %d", first.cmd.Process.Pid)} {
		if !strings.Contains(out, want) {
			t.Errorf("error does not name %q:\n%s", want, out)
		}
	}
	if lines := strings.Split(out, "\n"); len(lines) != 1 {
		t.Errorf("want one line, got %d:\n%s", len(lines), out)
	}

	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	if _, err := os.Stat(filepath.Join(data, "natter.lock")); err != nil {
		t.Fatalf("lock file of the killed process: %v", err)
	}
	again := startDev(t, data)
	if code, _ := again.stop(t); code != 0 {
		t.Fatalf("restart after SIGKILL: exit %d\n%s", code, again.stderr)
	}
}

// TestReadyLineOrigins: natter dev's ready line lists the allowed browser
// Origins ("none" without --origins), and the README's sample ready line
// has the keys the real one has.
func TestReadyLineOrigins(t *testing.T) {
	t.Parallel()
	p := startDev(t, t.TempDir(), "--origins", "http://localhost:3000, https://app.example")
	if got, want := p.ready["origins"], "http://localhost:3000,https://app.example"; got != want {
		t.Errorf("ready line origins=%q, want %q", got, want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sample := regexp.MustCompile(`(?m)^.*msg="natter ready" mode=dev.*$`).FindString(string(readme))
	if sample == "" {
		t.Fatal("README.md has no sample ready line of natter dev")
	}
	keys := func(m map[string]string) string {
		var ks []string
		for k := range m {
			if k != "time" {
				ks = append(ks, k)
			}
		}
		sort.Strings(ks)
		return strings.Join(ks, " ")
	}
	m := map[string]string{}
	for _, g := range kv.FindAllStringSubmatch(sample, -1) {
		m[g[1]] = strings.Trim(g[2], `"`)
	}
	if keys(m) != keys(p.ready) {
		t.Errorf("README sample ready line has keys %q, natter dev prints %q", keys(m), keys(p.ready))
	}
	if !strings.Contains(string(readme), "--origins") {
		t.Error("README.md does not say how to allow a browser page (--origins)")
	}
	// Without --origins no browser page is allowed, and the line says so.
	q := startDev(t, t.TempDir())
	if got := q.ready["origins"]; got != "none" {
		t.Errorf("ready line without --origins: origins=%q, want none", got)
	}
}
