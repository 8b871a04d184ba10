//go:build unix && !linux

package cluster

import "syscall"

// sysProcAttr puts a detached process in its own session, an attached one
// in its own process group.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}

// alive reports whether pid is a live process (signal 0). Without /proc the
// arguments are not checked.
func alive(pid int, _ []string) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// signalPID sends sig to pid.
func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// livePIDs returns pid if it is alive (other processes are not looked for
// on this system).
func livePIDs(pid int, args []string) []int {
	if alive(pid, args) {
		return []int{pid}
	}
	return nil
}
