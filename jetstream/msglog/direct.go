package msglog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// directReq is the JSON of a direct get request (server JSApiMsgGetRequest).
type directReq struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	NoHeaders bool     `json:"no_hdr,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
}

// replyMux routes the replies of batched direct gets, which come as many
// messages per request, over one wildcard inbox subscription: a
// subscription per request would cost a 64k-slot channel each (nats.go's
// SubChanLen) and dominated the cost of a page read.
type replyMux struct {
	prefix string // inbox prefix ending in "."
	sub    *nats.Subscription
	next   atomic.Uint64
	mu     sync.Mutex
	reqs   map[string]*replies
}

// replies queues the messages of one request without ever blocking the
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

// open registers a request and returns its reply subject.
func (m *replyMux) open() (string, *replies) {
	token := strconv.FormatUint(m.next.Add(1), 36)
	r := &replies{notify: make(chan struct{}, 1)}
	m.mu.Lock()
	m.reqs[token] = r
	m.mu.Unlock()
	return m.prefix + token, r
}

func (m *replyMux) close(reply string) {
	m.mu.Lock()
	delete(m.reqs, reply[len(m.prefix):])
	m.mu.Unlock()
}

// take waits for the queued replies.
func (r *replies) take(ctx context.Context, buf []*nats.Msg) ([]*nats.Msg, error) {
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

// eob is what the end-of-batch status reports.
type eob struct {
	pending uint64 // entries matching the request after the last one sent (no_hdr: an upper bound)
	last    uint64 // stream sequence of the last entry sent
}

// directBatch sends a batched direct get to MSGS and hands each returned
// entry to fn, in order, until the end-of-batch status (204 EOB, returned),
// "no messages" (404) or fn returning false or an error.
func (l *Log) directBatch(ctx context.Context, req directReq, fn func(*nats.Msg) (bool, error)) (eob, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return eob{}, err
	}
	reply, r := l.mux.open()
	defer l.mux.close(reply)
	if err := l.nc.PublishRequest(l.directGet, reply, body); err != nil {
		return eob{}, fmt.Errorf("direct get: %w", err)
	}
	var buf []*nats.Msg
	for {
		if buf, err = r.take(ctx, buf); err != nil {
			return eob{}, fmt.Errorf("direct get: %w", err)
		}
		for _, m := range buf {
			if st := m.Header.Get("Status"); len(m.Data) == 0 && st != "" {
				switch st {
				case "204":
					var e eob
					e.pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
					e.last, _ = strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
					return e, nil
				case "404": // no (more) messages
					return eob{}, nil
				case "503":
					return eob{}, fmt.Errorf("direct get: %w", nats.ErrNoResponders)
				default:
					return eob{}, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
				}
			}
			if more, err := fn(m); err != nil || !more {
				return eob{}, err
			}
		}
	}
}
