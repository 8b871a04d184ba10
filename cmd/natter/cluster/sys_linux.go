package cluster

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts a detached process in its own session (no signal from
// the caller's terminal reaches it); an attached one is killed when the
// caller dies, so a crashed test leaves nothing behind.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// alive reports whether pid is a live process (not a zombie) running the
// natter binary with args, so that a pid reused by another program is
// never signalled.
func alive(pid int, args []string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	got := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(got) != len(args)+1 {
		return false
	}
	for i, a := range args {
		if got[i+1] != a {
			return false
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// livePIDs returns the live processes running the natter binary with args:
// pid first if it is one, then any other, such as a process started again
// by hand with the same arguments.
func livePIDs(pid int, args []string) []int {
	var out []int
	if alive(pid, args) {
		out = append(out, pid)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == pid || n == os.Getpid() {
			continue
		}
		if alive(n, args) {
			out = append(out, n)
		}
	}
	return out
}

// signalPID sends sig to pid.
func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
