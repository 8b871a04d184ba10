package infra_test

import (
	"net"
	"os"
	"testing"
	"time"
)

// checkFor calls fn every interval until it returns nil, failing the test
// with fn's last error after total.
func checkFor(tb testing.TB, total, every time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readFile returns the contents of a file of this directory tree.
func readFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
