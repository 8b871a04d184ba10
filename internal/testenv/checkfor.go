package testenv

import (
	"testing"
	"time"
)

// CheckFor calls fn every `every` until it returns nil, and fails tb with
// fn's last error once total has passed (nats-server's checkFor). fn runs at
// least once, and once more after the deadline has passed, so a condition
// that holds by then is never reported as unmet. Call it from the test's own
// goroutine: it fails with tb.Fatalf.
func CheckFor(tb testing.TB, total, every time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met after %v: %v", total, err)
			return
		}
		time.Sleep(every)
	}
}
