package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// Send sends a message to conv and returns its ack once the message is
// durable. It gives the message a random client message id (or the one of
// [WithCmid]) and keeps re-sending it with that same id across disconnects,
// reconnects, timeouts and retryable errors (unavailable, rate_limited),
// with back-off, until it gets an answer or ctx ends: the message is stored
// exactly once, whatever happens to the connection. A refusal (not_member,
// too_big, ...) is an [*Error]. When ctx ends first the message may or may
// not have been stored: send again with the cmid named in the error and
// [WithCmid] to find out.
//
// The first attempt with a cmid Send made itself is marked as such (the
// frame's first field), which saves the edge a lookup; every resend, and
// every send with [WithCmid], is not, so the edge checks it against the
// stored messages even after JetStream's dedup window.
func (c *Client) Send(ctx context.Context, conv, body string, opts ...SendOption) (natter.Ack, error) {
	var o sendOptions
	for _, f := range opts {
		f(&o)
	}
	fresh := o.cmid == ""
	if fresh {
		o.cmid = NewCmid()
	}
	req := protocol.Request{Op: protocol.OpSend, Conv: conv, Cmid: o.cmid, Body: body, Type: o.typ, ReplyTo: o.replyTo, Thread: o.thread, Mentions: o.mentions}
	for _, a := range o.attachments {
		req.Attachments = append(req.Attachments, natter.Attachment{ID: a.ID, Name: a.Name})
	}
	if err := req.Validate(); err != nil {
		return natter.Ack{}, protoErr(protocol.OpSend, err)
	}
	fail := func(err error) (natter.Ack, error) {
		return natter.Ack{}, fmt.Errorf("client: send to %s (cmid %s): %w", conv, o.cmid, err)
	}
	backoffs := 0
	for attempt := 0; ; attempt++ {
		cn, err := c.current(ctx)
		if err != nil {
			return fail(err)
		}
		if err := protocol.CheckBody(body, cn.hello.MaxBody); err != nil {
			return natter.Ack{}, protoErr(protocol.OpSend, err)
		}
		// The edge answers a socket's requests one at a time: the sends
		// held while the client was away would queue the connection's
		// first sync behind them (in a reconnect storm, behind seconds of
		// appends). They go once it has completed, or after a bound.
		c.waitSynced(ctx, cn)
		if attempt > 0 {
			c.stats.sendRetries.Add(1)
		}
		// Only the very first frame of a cmid of our own is a first
		// attempt: once a frame may have left, every later one is a resend.
		req.First = fresh && attempt == 0
		f, _, err := c.roundTrip(ctx, cn, &req)
		switch {
		case err == nil:
		case errors.Is(err, errDisconnected), errors.Is(err, ErrTimeout):
			continue // same cmid on the next (or same) connection
		default:
			return fail(err)
		}
		if f.Err != nil {
			e := &Error{Op: protocol.OpSend, Code: f.Err.Code, Msg: f.Err.Msg}
			if !e.Retryable() {
				return natter.Ack{}, e
			}
			if !c.sleep(ctx, c.backoff(backoffs)) {
				return fail(errors.Join(e, ctxErr(ctx, c)))
			}
			backoffs++
			continue
		}
		var ack natter.Ack
		if !protocol.DecodeAck(f.Data, &ack) {
			if err := json.Unmarshal(f.Data, &ack); err != nil {
				return fail(fmt.Errorf("decoding ack: %w", err))
			}
		}
		c.stats.sends.Add(1)
		c.onOwn(conv, ack.Seq, ownEntry(cn.hello.User, &req, ack))
		return ack, nil
	}
}

// sendSyncWait bounds how long a send waits for its connection's first
// sync.
const sendSyncWait = 2 * time.Second

// waitSynced waits until cn's first sync has completed, cn has ended, ctx
// has ended, the client stops or sendSyncWait has passed.
func (c *Client) waitSynced(ctx context.Context, cn *conn) {
	select {
	case <-cn.synced:
		return
	default:
	}
	t := time.NewTimer(sendSyncWait)
	defer t.Stop()
	select {
	case <-cn.synced:
	case <-cn.done:
	case <-ctx.Done():
	case <-c.quit:
	case <-t.C:
	}
}

func ctxErr(ctx context.Context, c *Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.stopErr()
}

// call runs a request other than send and decodes its reply into out (when
// not nil). It waits for a connection and retries across disconnects and on
// retryable errors, all within Config.RequestTimeout. A request that is not
// idempotent is not repeated once it may have reached the edge, except
// after rate_limited (which guarantees nothing was done).
func (c *Client) call(ctx context.Context, req protocol.Request, idempotent bool, out any) error {
	return c.callRetry(ctx, req, idempotent, true, out)
}

// callRetry is call; with retryRateLimited false a rate_limited answer is
// returned at once.
func (c *Client) callRetry(ctx context.Context, req protocol.Request, idempotent, retryRateLimited bool, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	fail := func(err error) error { return fmt.Errorf("client: %s: %w", req.Op, err) }
	for attempt := 0; ; attempt++ {
		cn, err := c.current(ctx)
		if err != nil {
			return fail(err)
		}
		f, written, err := c.roundTrip(ctx, cn, &req)
		switch {
		case err == nil:
		case errors.Is(err, errDisconnected) && (idempotent || !written):
			continue
		case errors.Is(err, errDisconnected):
			return fail(ErrConnectionLost)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			return fail(ErrTimeout)
		default:
			var e *Error
			if errors.As(err, &e) {
				return e
			}
			return fail(err)
		}
		if f.Err != nil {
			e := &Error{Op: req.Op, Code: f.Err.Code, Msg: f.Err.Msg}
			rl := e.Code == protocol.CodeRateLimited
			if (rl && retryRateLimited) || (!rl && idempotent && e.Retryable()) {
				if !c.sleep(ctx, c.backoff(attempt)) {
					return e
				}
				continue
			}
			return e
		}
		if out != nil {
			if err := json.Unmarshal(f.Data, out); err != nil {
				return fail(fmt.Errorf("decoding reply: %w", err))
			}
		}
		return nil
	}
}

// History returns a page of conv, oldest first: the newest messages when
// before is 0, else those just older than seq before. more is true when
// older messages exist. limit 0 means 50; at most 200.
func (c *Client) History(ctx context.Context, conv string, before uint64, limit int) (msgs []natter.Message, more bool, err error) {
	req := protocol.Request{Op: protocol.OpHistory, Conv: conv, Limit: limit}
	if before > 0 {
		req.Before = protocol.Seq(before)
	}
	var res protocol.HistoryResult
	err = c.call(ctx, req, true, &res)
	return res.Msgs, res.More, err
}

// HistoryAfter returns the messages of conv just newer than seq after,
// oldest first; more is true when newer ones exist. after 0 reads from the
// first message on. limit 0 means 50; at most 200.
func (c *Client) HistoryAfter(ctx context.Context, conv string, after uint64, limit int) (msgs []natter.Message, more bool, err error) {
	var res protocol.HistoryResult
	err = c.call(ctx, protocol.Request{Op: protocol.OpHistory, Conv: conv, After: protocol.Seq(after), Limit: limit}, true, &res)
	return res.Msgs, res.More, err
}

// Thread returns a page of the replies in the thread of the message root
// of conv, oldest first: the newest when before is 0, else those just
// older than seq before; more is true when older replies exist. limit 0
// means 50; at most 100.
func (c *Client) Thread(ctx context.Context, conv, root string, before uint64, limit int) (msgs []natter.Message, more bool, err error) {
	req := protocol.Request{Op: protocol.OpThread, Conv: conv, Root: root, Limit: limit}
	if before > 0 {
		req.Before = protocol.Seq(before)
	}
	var res protocol.HistoryResult
	err = c.call(ctx, req, true, &res)
	return res.Msgs, res.More, err
}

// MarkRead records that the user has read conv up to seq (for all devices;
// it only moves forward).
func (c *Client) MarkRead(ctx context.Context, conv string, seq uint64) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpRead, Conv: conv, Seq: seq}, true, nil)
}

// CreateDirect returns the direct conversation with user with, creating it
// if needed (there is one per pair of users).
func (c *Client) CreateDirect(ctx context.Context, with string) (natter.Conversation, error) {
	var conv natter.Conversation
	err := c.call(ctx, protocol.Request{Op: protocol.OpConvCreate, Kind: natter.KindDirect, With: with}, true, &conv)
	return conv, err
}

// CreateGroup creates a group named name with the caller and members.
// Creating a group is not idempotent: if the connection fails with the
// request in flight it returns [ErrConnectionLost] instead of trying again.
func (c *Client) CreateGroup(ctx context.Context, name string, members ...string) (natter.Conversation, error) {
	var conv natter.Conversation
	err := c.call(ctx, protocol.Request{Op: protocol.OpConvCreate, Kind: natter.KindGroup, Name: name, Members: members}, false, &conv)
	return conv, err
}

// AddMembers adds users to the group conv (adding a member is a no-op).
func (c *Client) AddMembers(ctx context.Context, conv string, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpMembersAdd, Conv: conv, Users: users}, true, nil)
}

// RemoveMembers removes users from the group conv; removing yourself leaves
// the group.
func (c *Client) RemoveMembers(ctx context.Context, conv string, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpMembersRemove, Conv: conv, Users: users}, true, nil)
}

// Members lists the members of conv.
func (c *Client) Members(ctx context.Context, conv string) ([]string, error) {
	var res protocol.MemberList
	err := c.call(ctx, protocol.Request{Op: protocol.OpMembersList, Conv: conv}, true, &res)
	return res.Members, err
}

// Conversation returns conv with its members and head.
func (c *Client) Conversation(ctx context.Context, conv string) (natter.Conversation, error) {
	var res natter.Conversation
	err := c.call(ctx, protocol.Request{Op: protocol.OpConvGet, Conv: conv}, true, &res)
	return res, err
}

// Conversations lists every conversation of the user with its head and
// the user's read cursor and unread count, in id order, asking for them in
// pages of protocol.MaxPageSize. Members may be left out for large groups:
// use [Client.Members].
func (c *Client) Conversations(ctx context.Context) ([]natter.Conversation, error) {
	var all []natter.Conversation
	page := ""
	for {
		var res protocol.ConvList
		err := c.call(ctx, protocol.Request{Op: protocol.OpConvList, PageSize: protocol.MaxPageSize, Page: page}, true, &res)
		if err != nil {
			return nil, err
		}
		all = append(all, res.Convs...)
		if res.Next == "" {
			if all == nil {
				all = []natter.Conversation{}
			}
			return all, nil
		}
		if res.Next == page {
			return nil, fmt.Errorf("client: conv.list: the next page is the same %q", page)
		}
		page = res.Next
	}
}

// Ping measures the round trip to the edge and returns it with the edge's
// clock.
func (c *Client) Ping(ctx context.Context) (rtt time.Duration, server time.Time, err error) {
	var res protocol.Pong
	start := time.Now()
	if err := c.call(ctx, protocol.Request{Op: protocol.OpPing}, true, &res); err != nil {
		return 0, time.Time{}, err
	}
	return time.Since(start), time.UnixMilli(res.TS), nil
}

// Messages returns the channel on which every message of every
// conversation of the user arrives exactly once, in seq order per
// conversation (see the package documentation). It is closed when the
// client stops.
func (c *Client) Messages() <-chan natter.Message { return c.msgs }
