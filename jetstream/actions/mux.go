package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/kvbatch"
)

// replyMux routes the replies of the bucket's batched direct gets (many
// messages per request) over one wildcard inbox subscription, as
// msglog's does: a subscription per request (kvbatch.MultiLast) costs a
// 64k-slot channel each, which doubled the cost of a history page.
type replyMux struct {
	prefix string // inbox prefix ending in "."
	sub    *nats.Subscription
	next   atomic.Uint64
	mu     sync.Mutex
	reqs   map[string]*replies
}

// replies queues the messages of one request without blocking the
// subscription's delivery goroutine.
type replies struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	notify chan struct{} // cap 1: "msgs is not empty"
}

func newReplyMux(nc *nats.Conn) (*replyMux, error) {
	m := &replyMux{prefix: nc.NewInbox() + ".", reqs: make(map[string]*replies)}
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

func (m *replyMux) dispatch(msg *nats.Msg) {
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

// multiLast is kvbatch.MultiLast over the mux: one batched direct get for
// the last entry of every subject filters match, each handed to fn.
func (b *Bucket) multiLast(ctx context.Context, filters []string, fn func(*nats.Msg)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kvbatch.DefaultTimeout)
		defer cancel()
	}
	body, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{filters})
	if err != nil {
		return err
	}
	m := b.mux
	token := strconv.FormatUint(m.next.Add(1), 36)
	r := &replies{notify: make(chan struct{}, 1)}
	m.mu.Lock()
	m.reqs[token] = r
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.reqs, token)
		m.mu.Unlock()
	}()
	if err := b.nc.PublishRequest(b.directGet, m.prefix+token, body); err != nil {
		return err
	}
	var buf []*nats.Msg
	for {
		r.mu.Lock()
		buf = append(buf[:0], r.msgs...)
		clear(r.msgs)
		r.msgs = r.msgs[:0]
		r.mu.Unlock()
		for _, msg := range buf {
			if len(msg.Data) == 0 && msg.Header.Get("Status") != "" {
				switch status := msg.Header.Get("Status"); status {
				case "204", "404": // end of batch; nothing matched
					return nil
				default:
					return fmt.Errorf("%w: %s %s", kvbatch.ErrDirectGet, status, msg.Header.Get("Description"))
				}
			}
			fn(msg)
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
