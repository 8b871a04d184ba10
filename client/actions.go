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
	err := c.call(ctx, req, true, &ack)
	return ack, err
}
