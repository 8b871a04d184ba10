package edge

import (
	"context"
	"testing"
	"time"
)

// TestDeadlines: the requests that start within one window share a
// context whose deadline is the timeout after the window's end (so every
// request gets the timeout to the timeout + the window); a request after
// the window gets the next one; each ends at its deadline.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	d := deadlines{timeout: 200 * time.Millisecond, window: 50 * time.Millisecond}
	t0 := time.Now()
	a := d.get(t0)
	b := d.get(t0.Add(49 * time.Millisecond))
	c := d.get(t0.Add(50 * time.Millisecond))
	if a != b || a == c {
		t.Fatalf("contexts within one window shared: %v, after it new: %v", a == b, a != c)
	}
	for _, tc := range []struct {
		ctx   context.Context
		start time.Time
	}{{a, t0}, {b, t0.Add(49 * time.Millisecond)}, {c, t0.Add(50 * time.Millisecond)}} {
		dl, ok := tc.ctx.Deadline()
		if left := dl.Sub(tc.start); !ok || left < d.timeout || left > d.timeout+d.window {
			t.Errorf("a request started at +%v has %v (deadline set: %v), want %v to %v", tc.start.Sub(t0), left, ok, d.timeout, d.timeout+d.window)
		}
	}
	waitFor(t, "the contexts to end", func() bool { return a.Err() != nil && c.Err() != nil })
	if a.Err() != context.DeadlineExceeded || time.Since(t0) < d.timeout {
		t.Fatalf("ended with %v after %v, want the deadline after %v", a.Err(), time.Since(t0), d.timeout)
	}
	last := d.get(time.Now())
	if last.Err() != nil {
		t.Fatal("a request after the windows got an ended context")
	}
	d.stop()
	if last.Err() == nil {
		t.Fatal("stop left the newest context running")
	}
}
