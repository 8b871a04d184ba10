package kvbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// Mux routes the replies of batched direct gets, which come as many
// messages per request, over one wildcard inbox subscription: a
// subscription per request costs a 64k-slot channel each (nats.go's
// SubChanLen), a goroutine, and a subscribe and an unsubscribe at the
// server, and dominated the cost of a page read. The message log and the
// ACTIONS bucket read through one each, MultiLast through one per
// connection.
type Mux struct {
	prefix string // inbox prefix ending in "."
	sub    *nats.Subscription
	next   atomic.Uint64
	mu     sync.Mutex
	reqs   map[string]*Replies
}

// Replies queues the messages of one request without ever blocking the
// subscription's delivery goroutine.
type Replies struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	notify chan struct{} // cap 1: "msgs is not empty"
}

// NewMux subscribes to a fresh inbox prefix of nc; Close unsubscribes.
func NewMux(nc *nats.Conn) (*Mux, error) {
	m := &Mux{prefix: nc.NewInbox() + ".", reqs: make(map[string]*Replies)}
	sub, err := nc.Subscribe(m.prefix+"*", m.dispatch)
	if err != nil {
		return nil, err
	}
	// The handler only queues; never let the client drop replies.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	m.sub = sub
	return m, nil
}

// Close unsubscribes; a connection already closed is not an error.
func (m *Mux) Close() error {
	if err := m.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
		return err
	}
	return nil
}

func (m *Mux) dispatch(msg *nats.Msg) {
	m.mu.Lock()
	r := m.reqs[msg.Subject[len(m.prefix):]]
	m.mu.Unlock()
	if r == nil {
		return // a request that gave up already
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Open registers a request and returns its reply subject; Done forgets it.
func (m *Mux) Open() (string, *Replies) {
	token := strconv.FormatUint(m.next.Add(1), 36)
	r := &Replies{notify: make(chan struct{}, 1)}
	m.mu.Lock()
	m.reqs[token] = r
	m.mu.Unlock()
	return m.prefix + token, r
}

// Done forgets the request of reply: later replies to it are dropped.
func (m *Mux) Done(reply string) {
	m.mu.Lock()
	delete(m.reqs, reply[len(m.prefix):])
	m.mu.Unlock()
}

// Take waits for the queued replies and returns them in buf (reused).
func (r *Replies) Take(ctx context.Context, buf []*nats.Msg) ([]*nats.Msg, error) {
	for {
		r.mu.Lock()
		buf = append(buf[:0], r.msgs...)
		clear(r.msgs)
		r.msgs = r.msgs[:0]
		r.mu.Unlock()
		if len(buf) > 0 {
			return buf, nil
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// MultiLast is the package's MultiLast over the mux: one batched direct get
// for the last entry of every subject filters match, each handed to fn.
func (m *Mux) MultiLast(ctx context.Context, nc *nats.Conn, directGet string, filters []string, fn func(*nats.Msg)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	body, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{filters})
	if err != nil {
		return err
	}
	reply, r := m.Open()
	defer m.Done(reply)
	if err := nc.PublishRequest(directGet, reply, body); err != nil {
		return err
	}
	var buf []*nats.Msg
	for {
		if buf, err = r.Take(ctx, buf); err != nil {
			return err
		}
		for _, msg := range buf {
			if len(msg.Data) == 0 && msg.Header.Get("Status") != "" {
				switch status := msg.Header.Get("Status"); status {
				case "204", "404": // end of batch; nothing matched
					return nil
				case "503": // what MultiLast's request gets as an error
					return nats.ErrNoResponders
				default:
					return fmt.Errorf("%w: %s %s", ErrDirectGet, status, msg.Header.Get("Description"))
				}
			}
			fn(msg)
		}
	}
}
