//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the natter binary every process of the cluster runs, built
// once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "natter-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "natter")
	out, err := exec.Command("go", "build", "-o", binary, "../../cmd/natter").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build natter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
