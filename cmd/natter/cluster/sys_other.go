//go:build !unix

package cluster

import (
	"os"
	"syscall"
)

func sysProcAttr(bool) *syscall.SysProcAttr { return nil }

// alive reports whether a process with pid exists.
func alive(pid int, _ []string) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// signalPID ends pid (only killing is supported here).
func signalPID(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// livePIDs returns pid if it is alive (other processes are not looked for
// on this system).
func livePIDs(pid int, args []string) []int {
	if alive(pid, args) {
		return []int{pid}
	}
	return nil
}
