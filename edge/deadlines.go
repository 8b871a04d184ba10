package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// requestTimeout bounds the work of a client's WebSocket request.
	requestTimeout = 15 * time.Second
	// deadlineWindow is how long the requests that start one after
	// another share a context: a request's work is bounded by
	// requestTimeout to requestTimeout + deadlineWindow.
	deadlineWindow = 100 * time.Millisecond
)

// deadlines hands out the contexts the sessions' requests run under. The
// requests that start within one window share a context that ends
// requestTimeout after the window's end: a context of each request's own
// (its timer set and stopped, its cancellation registered, 4 or 5
// allocations) cost about as much as decoding the request. A request's
// context ends only by its deadline, which the work's own sub-contexts
// inherit; nothing is left to cancel when a request ends early. The zero
// value uses requestTimeout and deadlineWindow.
type deadlines struct {
	// timeout and window override requestTimeout and deadlineWindow
	// (zero: those).
	timeout, window time.Duration

	cur atomic.Pointer[deadlineCtx]
	mu  sync.Mutex // held while making the next context
}

type deadlineCtx struct {
	ctx    context.Context
	until  time.Time // the end of the window
	cancel context.CancelFunc
}

// get returns the context of a request that starts now.
func (d *deadlines) get(now time.Time) context.Context {
	if c := d.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	timeout, window := d.timeout, d.window
	if timeout <= 0 {
		timeout = requestTimeout
	}
	if window <= 0 {
		window = deadlineWindow
	}
	until := now.Add(window)
	// The deadline's timer cancels the context (stop, the newest one).
	ctx, cancel := context.WithDeadline(context.Background(), until.Add(timeout))
	d.cur.Store(&deadlineCtx{ctx: ctx, until: until, cancel: cancel})
	return ctx
}

// stop cancels the newest context (the older ones end by their timers,
// at most requestTimeout + deadlineWindow from now).
func (d *deadlines) stop() {
	if c := d.cur.Load(); c != nil {
		c.cancel()
	}
}
