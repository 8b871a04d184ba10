package edge

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
)

// TestFlushGroup: when flush returns, the subscription its caller made
// before is at the server (a publish from another connection reaches it),
// for many callers at once; and after the group's done closes, flush
// returns an error instead of waiting.
func TestFlushGroup(t *testing.T) {
	t.Parallel()
	srv, nc := testNATS(t)
	pub := testenv.Connect(t, srv.ClientURL())
	done := make(chan struct{})
	g := newFlushGroup(nc, 5*time.Second, done)
	const callers = 500
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			subj := "flush.test." + strconv.Itoa(i)
			ch := make(chan *nats.Msg, 1)
			sub, err := nc.ChanSubscribe(subj, ch)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := g.flush(); err != nil {
				errs <- err
				return
			}
			// The subscription is at the server: a message published now
			// from elsewhere reaches it.
			if err := pub.Publish(subj, []byte("x")); err != nil {
				errs <- err
				return
			}
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				errs <- fmt.Errorf("%s: the message after the flush never came", subj)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(done)
	if err := g.flush(); err == nil {
		t.Fatal("flush after done: no error")
	}
}
