package edge

import (
	"time"

	"github.com/nats-io/nats.go"
)

// flushGroup coalesces the flushes of many goroutines on one connection:
// a goroutine that needs what it wrote (a subscription) to be at the
// server before it goes on hands a reply channel to the group's goroutine,
// which flushes once for every waiter that came while its last flush was
// out. A reconnect storm's thousands of subscribes cost one round trip per
// batch, not one PING each (and no convoy of waiters on the connection's
// mutex).
type flushGroup struct {
	nc      *nats.Conn
	timeout time.Duration
	reqs    chan chan error
	done    <-chan struct{}
}

// flushWaiters bounds the waiters queued for the group's next flush; more
// wait to be queued.
const flushWaiters = 4096

// newFlushGroup starts the group's goroutine, which ends when done closes.
// A flush fails after timeout.
func newFlushGroup(nc *nats.Conn, timeout time.Duration, done <-chan struct{}) *flushGroup {
	g := &flushGroup{nc: nc, timeout: timeout, reqs: make(chan chan error, flushWaiters), done: done}
	go g.run()
	return g
}

// flush returns once the server has processed everything the caller wrote
// on the connection before calling it (or the flush failed).
func (g *flushGroup) flush() error {
	ch := make(chan error, 1)
	select {
	case g.reqs <- ch:
	case <-g.done:
		return nats.ErrConnectionClosed
	}
	select {
	case err := <-ch:
		return err
	case <-g.done:
		return nats.ErrConnectionClosed
	}
}

func (g *flushGroup) run() {
	var batch []chan error
	for {
		select {
		case ch := <-g.reqs:
			batch = append(batch, ch)
		case <-g.done:
			return
		}
	more:
		for len(batch) < flushWaiters {
			select {
			case ch := <-g.reqs:
				batch = append(batch, ch)
			default:
				break more
			}
		}
		// The PING goes after what every waiter in batch wrote: each wrote
		// before handing its channel over.
		err := g.nc.FlushTimeout(g.timeout)
		for _, ch := range batch {
			ch <- err
		}
		clear(batch)
		batch = batch[:0]
	}
}
