// Package testbin builds the natter binary for tests that run it as real
// processes (the process tests of cmd/natter, the cluster harness, the chaos
// suite, the load generator's tests).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main builds the natter command of pkg (a path relative to the test's
// package directory, e.g. "../../cmd/natter") into a temporary directory,
// sets *bin to the binary, runs the tests and exits with their code. Call it
// from TestMain.
func Main(m *testing.M, pkg string, bin *string) {
	dir, err := os.MkdirTemp("", "natter-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "natter")
	if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build natter: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
