package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// Outgoing is one message of [Client.SendAll]: what [Client.Send] takes.
type Outgoing struct {
	Conv, Body string
	Opts       []SendOption
}

// SendAll sends msgs pipelined: their frames go out together (one write
// call when they fit in 64 KiB) and the edge, which answers a connection's
// requests one after the other, stores them in this order; SendAll returns
// once every one is answered. acks[i] is the ack of msgs[i]. Each message
// has the guarantees of [Client.Send]: a cmid of its own (or the one of
// [WithCmid]) kept across resends, stored exactly once. After a disconnect
// or a timeout the messages not yet acknowledged are sent again, in order,
// on the next connection. Order across the batch holds except where the
// edge answers one message with a retryable error (unavailable,
// rate_limited) and stores later ones: that message is sent again after
// them, with back-off. Messages that are refused, or not stored when ctx
// ends, keep a zero ack and are named in the error (errors.Join of one
// error per message, each an [*Error] for a refusal); the others are
// stored.
//
// A window of sends in flight costs the client one write and about one
// wake-up per batch instead of per message (docs/benchmarks.md, "Cost per
// message: client and edge").
func (c *Client) SendAll(ctx context.Context, msgs []Outgoing) ([]natter.Ack, error) {
	n := len(msgs)
	acks := make([]natter.Ack, n)
	if n == 0 {
		return acks, nil
	}
	type item struct {
		req   protocol.Request
		fresh bool
		tried bool
		err   error
	}
	items := make([]item, n)
	pending := make([]int, 0, n)
	for i, m := range msgs {
		var o sendOptions
		for _, f := range m.Opts {
			f(&o)
		}
		it := &items[i]
		it.fresh = o.cmid == ""
		if it.fresh {
			o.cmid = NewCmid()
		}
		it.req = protocol.Request{Op: protocol.OpSend, Conv: m.Conv, Cmid: o.cmid, Body: m.Body, Type: o.typ, ReplyTo: o.replyTo, Thread: o.thread, Mentions: o.mentions}
		for _, a := range o.attachments {
			it.req.Attachments = append(it.req.Attachments, natter.Attachment{ID: a.ID, Name: a.Name})
		}
		if err := it.req.Validate(); err != nil {
			it.err = protoErr(protocol.OpSend, err)
			continue
		}
		pending = append(pending, i)
	}
	wrap := func(it *item, err error) error {
		return fmt.Errorf("client: send to %s (cmid %s): %w", it.req.Conv, it.req.Cmid, err)
	}
	failAll := func(idx []int, err error) {
		for _, i := range idx {
			if items[i].err == nil {
				items[i].err = wrap(&items[i], err)
			}
		}
	}
	backoffs := 0
	for len(pending) > 0 {
		cn, err := c.current(ctx)
		if err != nil {
			failAll(pending, err)
			break
		}
		frames := make([][]byte, 0, len(pending))
		round := pending[:0:0]
		for _, i := range pending {
			it := &items[i]
			if err := protocol.CheckBody(it.req.Body, cn.hello.MaxBody); err != nil {
				it.err = protoErr(protocol.OpSend, err)
				continue
			}
			round = append(round, i)
		}
		if len(round) == 0 {
			break
		}
		c.waitSynced(ctx, cn)
		ids := make([]string, 0, len(round))
		slots := make([]int, 0, len(round)) // item of each id
		for _, i := range round {
			it := &items[i]
			if it.tried {
				c.stats.sendRetries.Add(1)
			}
			it.req.ID = strconv.FormatUint(c.ids.Add(1), 36)
			it.req.First = it.fresh && !it.tried
			it.tried = true
			frame, err := encodeRequest(&it.req)
			if err != nil {
				it.err = protoErr(protocol.OpSend, err)
				continue
			}
			frames = append(frames, frame)
			ids = append(ids, it.req.ID)
			slots = append(slots, i)
		}
		if len(ids) == 0 {
			break
		}
		b := newBatch(ids)
		if !cn.registerBatch(b) {
			// cn has ended: nothing was written; all go on the next one.
			select {
			case <-cn.done:
			case <-ctx.Done():
			case <-c.quit:
			}
			continue
		}
		// An error closes cn: the replies read before are taken below,
		// the others sent again.
		_ = cn.queueAll(frames...)
		werr := c.awaitBatch(ctx, cn, b)
		cn.unregisterBatch(b) // b.got is final from here on
		var retry []int
		var stop error
		backoff := false
		for k, i := range slots {
			it := &items[i]
			f := b.got[k].f
			switch {
			case b.got[k].fast:
				acks[i] = b.got[k].ack
				c.stats.sends.Add(1)
				c.onOwn(it.req.Conv, acks[i].Seq, ownEntry(cn.hello.User, &it.req, acks[i]))
				continue
			case f != nil:
			case errors.Is(werr, errDisconnected), errors.Is(werr, ErrTimeout):
				retry = append(retry, i) // same cmid on the next (or same) connection
				continue
			default:
				stop = werr
				it.err = wrap(it, werr)
				continue
			}
			if f.Err != nil {
				e := &Error{Op: protocol.OpSend, Code: f.Err.Code, Msg: f.Err.Msg}
				if !e.Retryable() {
					it.err = wrap(it, e)
					continue
				}
				backoff = true
				retry = append(retry, i)
				continue
			}
			ack := &acks[i]
			if !protocol.DecodeAck(f.Data, ack) {
				if err := json.Unmarshal(f.Data, ack); err != nil {
					it.err = wrap(it, fmt.Errorf("decoding ack: %w", err))
					continue
				}
			}
			c.stats.sends.Add(1)
			c.onOwn(it.req.Conv, ack.Seq, ownEntry(cn.hello.User, &it.req, *ack))
		}
		if stop != nil {
			failAll(retry, stop)
			break
		}
		if backoff && len(retry) > 0 && !c.sleep(ctx, c.backoff(backoffs)) {
			failAll(retry, ctxErr(ctx, c))
			break
		}
		if backoff {
			backoffs++
		}
		pending = retry
	}
	var errs []error
	for i := range items {
		if items[i].err != nil {
			errs = append(errs, items[i].err)
		}
	}
	return acks, errors.Join(errs...)
}

// batch collects the replies to the requests of one SendAll round: the
// reader stores each (under the connection's pmu) and wakes the sender
// once, when the last is in, instead of once per reply.
type batch struct {
	ids  []string // the request ids
	got  []reply  // the reply to request i, guarded by pmu
	left int      // replies still missing, guarded by pmu
	all  chan struct{}
}

// reply is a request's reply in a batch: an ack the reader decoded
// (fast), or the frame.
type reply struct {
	f    *protocol.ServerFrame
	ack  natter.Ack
	fast bool
}

type batchSlot struct {
	b *batch
	i int
}

func newBatch(ids []string) *batch {
	return &batch{ids: ids, got: make([]reply, len(ids)), left: len(ids), all: make(chan struct{})}
}

// put stores the reply to request i; the caller holds pmu.
func (b *batch) put(i int, r reply) {
	b.got[i] = r
	if b.left--; b.left == 0 {
		close(b.all)
	}
}

// registerBatch registers b's requests; false when cn has ended.
func (cn *conn) registerBatch(b *batch) bool {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	if cn.dead {
		return false
	}
	for i, id := range b.ids {
		cn.batches[id] = batchSlot{b, i}
	}
	return true
}

// unregisterBatch forgets b's requests: no reply reaches b afterwards.
func (cn *conn) unregisterBatch(b *batch) {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	for _, id := range b.ids {
		delete(cn.batches, id)
	}
}

// fastAck takes a res frame whose id and data the reader split off
// (resOf): when id is a request of a batch and data an ack as the edge
// writes it, the ack is decoded here, in one pass, straight into the
// batch (no frame is built, nothing is copied) and fastAck reports true.
func (cn *conn) fastAck(id, data []byte) bool {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	s, ok := cn.batches[string(id)]
	if !ok {
		return false
	}
	var a natter.Ack
	if !protocol.DecodeAck(data, &a) {
		return false
	}
	delete(cn.batches, s.b.ids[s.i])
	s.b.put(s.i, reply{ack: a, fast: true})
	return true
}

var (
	resPrefix = []byte(`{"t":"res","id":"`)
	resData   = []byte(`","data":`)
)

// resOf splits a res frame as the edge writes it,
// {"t":"res","id":"<id>","data":<value>}, with an id of the client's own
// (base 36), into id and value; ok is false for anything else, which the
// reader decodes in full.
func resOf(frame []byte) (id, value []byte, ok bool) {
	if !bytes.HasPrefix(frame, resPrefix) || frame[len(frame)-1] != '}' {
		return nil, nil, false
	}
	rest := frame[len(resPrefix) : len(frame)-1]
	n := 0
	for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] >= 'a' && rest[n] <= 'z') {
		n++
	}
	if n == 0 || !bytes.HasPrefix(rest[n:], resData) {
		return nil, nil, false
	}
	return rest[:n], rest[n+len(resData):], true
}

// awaitBatch waits until every reply of b is in (nil), cn ends
// (errDisconnected), no reply came for Config.RequestTimeout (ErrTimeout),
// ctx ends or the client stops.
func (c *Client) awaitBatch(ctx context.Context, cn *conn, b *batch) error {
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	last := len(b.got)
	for {
		select {
		case <-b.all:
			return nil
		case <-cn.done:
			return errDisconnected
		case <-t.C:
			cn.pmu.Lock()
			left := b.left
			cn.pmu.Unlock()
			if left == last {
				return ErrTimeout
			}
			last = left
			t.Reset(c.cfg.RequestTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.quit:
			return c.stopErr()
		}
	}
}
