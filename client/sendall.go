package client

import (
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
		ch    chan *protocol.ServerFrame
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
		for _, i := range round {
			it := &items[i]
			if it.tried {
				c.stats.sendRetries.Add(1)
			}
			it.req.ID = strconv.FormatUint(c.ids.Add(1), 36)
			it.req.First = it.fresh && !it.tried
			it.tried = true
			frame, err := it.req.Encode()
			if err != nil {
				it.err = protoErr(protocol.OpSend, err)
				it.ch = nil
				continue
			}
			it.ch = make(chan *protocol.ServerFrame, 1)
			if !cn.register(it.req.ID, it.ch) {
				break // cn has ended: the rest go on the next one
			}
			frames = append(frames, frame)
		}
		if len(frames) > 0 {
			// An error closed cn: the replies already read are taken
			// below, the others sent again.
			_ = cn.queueAll(frames...)
		}
		var retry []int
		var stop error
		backoff, timedOut := false, false
		t := time.NewTimer(c.cfg.RequestTimeout)
	wait:
		for k, i := range round {
			it := &items[i]
			if it.err != nil {
				continue // refused above
			}
			if it.ch == nil || timedOut {
				retry = append(retry, i) // not written, or given up on
				continue
			}
			// Once cn has ended, await returns at once: the reply, when the
			// reader had it, else errDisconnected.
			f, err := c.await(ctx, cn, it.ch, t)
			switch {
			case err == nil:
			case errors.Is(err, errDisconnected):
				retry = append(retry, i)
				continue
			case errors.Is(err, ErrTimeout):
				timedOut = true
				retry = append(retry, i)
				continue
			default:
				stop = err
				failAll(round[k:], err)
				break wait
			}
			t.Reset(c.cfg.RequestTimeout)
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
		t.Stop()
		for _, i := range round {
			if it := &items[i]; it.ch != nil {
				cn.unregister(it.req.ID)
				it.ch = nil
			}
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

// await waits for the reply on ch to a request written on cn; t bounds
// the wait (Config.RequestTimeout).
func (c *Client) await(ctx context.Context, cn *conn, ch chan *protocol.ServerFrame, t *time.Timer) (*protocol.ServerFrame, error) {
	select {
	case f := <-ch:
		return f, nil
	case <-cn.done:
		select {
		case f := <-ch:
			return f, nil
		default:
		}
		return nil, errDisconnected
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.quit:
		return nil, c.stopErr()
	}
}
