package client

import (
	"context"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// Edit replaces the text of message ref of conv (one of the user's own,
// within the edit window: 48 hours by default) with body. The edit is an
// entry of the conversation (type edit, ref) with a client message id of
// its own (random, or the one of [WithCmid]), so a retry is stored once;
// Edit retries across disconnects with it. The reply is the entry's ack.
// Refusals are [*Error]: forbidden (another user's message, past the
// window), not_found (no such message), conflict (it was deleted),
// too_many (edited 100 times).
func (c *Client) Edit(ctx context.Context, conv, ref, body string, opts ...SendOption) (natter.Ack, error) {
	return c.msgAction(ctx, protocol.Request{Op: protocol.OpMsgEdit, Conv: conv, Ref: ref, Body: body}, opts)
}

// Delete deletes (recalls) message ref of conv: one of the user's own
// within the delete window (24 hours by default), or any message of a
// group the user administers. Pages then return it as a tombstone
// (Deleted, empty Body). Retries as [Client.Edit] does; the refusals are
// the same but too_many.
func (c *Client) Delete(ctx context.Context, conv, ref string, opts ...SendOption) (natter.Ack, error) {
	return c.msgAction(ctx, protocol.Request{Op: protocol.OpMsgDelete, Conv: conv, Ref: ref}, opts)
}

func (c *Client) msgAction(ctx context.Context, req protocol.Request, opts []SendOption) (natter.Ack, error) {
	var o sendOptions
	for _, f := range opts {
		f(&o)
	}
	if o.cmid == "" {
		o.cmid = NewCmid()
	}
	req.Cmid = o.cmid
	if err := req.Validate(); err != nil {
		return natter.Ack{}, protoErr(req.Op, err)
	}
	var ack natter.Ack
	// The cmid makes it idempotent: a repeat is answered as a duplicate.
	if err := c.call(ctx, req, true, &ack); err != nil {
		return ack, err
	}
	c.onOwn(req.Conv, ack.Seq, ownEntry(c.User(), &req, ack))
	return ack, nil
}

// React adds the user's reaction emoji (1..32 bytes: an emoji, or a short
// code) to message ref of conv, or with remove takes it back. It is
// idempotent per user, message and emoji (retried across disconnects).
// The result is the emoji's count on the message after it. Refusals are
// [*Error]: not_member, not_found, conflict (a deleted message), too_many
// (a 21st distinct emoji), bad_frame (a bad emoji).
func (c *Client) React(ctx context.Context, conv, ref, emoji string, remove bool) (protocol.ReactResult, error) {
	req := protocol.Request{Op: protocol.OpReact, Conv: conv, Ref: ref, Emoji: emoji, Remove: remove}
	if err := req.Validate(); err != nil {
		return protocol.ReactResult{}, protoErr(req.Op, err)
	}
	var res protocol.ReactResult
	err := c.call(ctx, req, true, &res)
	return res, err
}

// ReactionEvents returns the channel of reaction pushes: a member of one
// of the user's conversations (the user too, on any device) added or
// removed a reaction. Best effort like the other event channels: dropped
// when the channel is full, missed while disconnected (pages carry the
// counts). It is closed when the client stops.
func (c *Client) ReactionEvents() <-chan protocol.ReactionFrame { return c.reactions }

func (c *Client) onReaction(f protocol.ReactionFrame) {
	c.stats.reactions.Add(1)
	select {
	case c.reactions <- f:
	default:
		c.stats.dropped.Add(1)
	}
}
