//go:build linux

package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTaskRunStops runs the README's "go tool task run" (go -> go-task ->
// natter dev) and stops it as an IDE or a supervisor does, with ONE SIGTERM
// to the process it started, and as a terminal does on Ctrl-C, with SIGINT to
// the whole process group (go, go-task and natter each get it, and go-task
// passes its own on). Either way natter shuts down gracefully ("natter
// stopped", no forced exit, exit status 0) and every process of the run is
// gone.
func TestTaskRunStops(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "natter")
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		group bool
	}{
		{"one SIGTERM to go tool task", syscall.SIGTERM, false},
		{"Ctrl-C to the process group", syscall.SIGINT, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &lockedBuffer{}
			cmd := exec.Command("go", "tool", "task", "run", "BIN="+bin, "--",
				"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", "-1")
			cmd.Dir = root
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			pr, pw := io.Pipe()
			cmd.Stdout = io.MultiWriter(out, pw)
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); pw.Close(); close(exited) }()
			t.Cleanup(func() {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
			})
			ready := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), `msg="natter ready"`) {
						close(ready)
						break
					}
				}
				_, _ = io.Copy(io.Discard, pr)
			}()
			select {
			case <-ready:
			case <-exited:
				t.Fatalf("go tool task run exited before natter was ready:\n%s", out)
			case <-time.After(5 * time.Minute):
				t.Fatalf("natter not ready 5 minutes after go tool task run:\n%s", out)
			}
			procs := descendants(t, cmd.Process.Pid)
			if len(procs) < 2 { // go-task and natter at least
				t.Fatalf("go tool task run has %d descendant processes, want go-task and natter", len(procs))
			}

			target := cmd.Process.Pid
			if tc.group {
				target = -pgid
			}
			if err := syscall.Kill(target, tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("go tool task run still running 30s after one %v:\n%s", tc.sig, out)
			}
			// Whatever the run started has exited and been reaped too: none
			// was left behind as an orphan.
			deadline := time.Now().Add(10 * time.Second)
			for _, pid := range procs {
				for running(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("process %d of the run still running after it exited:\n%s", pid, out)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			if s := out.String(); !strings.Contains(s, `msg="natter stopped"`) || strings.Contains(s, "forcing exit") || cmd.ProcessState.ExitCode() != 0 {
				t.Fatalf("natter did not stop gracefully (exit %d):\n%s", cmd.ProcessState.ExitCode(), s)
			}
		})
	}
}

// descendants lists the processes below pid (from /proc).
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// running reports whether pid exists and has not exited (a zombie has).
func running(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// procStat reads the parent pid and the state of pid from /proc/pid/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}
