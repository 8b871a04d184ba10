package client

import (
	"context"

	"github.com/natter-im/natter/edge/protocol"
)

// Receipts returns one page of the read cursors of conv's members, sorted
// by user id: the members after afterUser ("" for the first page), at most
// limit (1..[protocol.MaxReceiptsLimit]; 0 means
// [protocol.DefaultReceiptsLimit]). Ask for the next page with the reply's
// Next as afterUser until Next is "". A member with Seq 0 has read nothing.
// Refused: not_member, bad_frame naming limit or after_user.
func (c *Client) Receipts(ctx context.Context, conv, afterUser string, limit int) (protocol.ReceiptsResult, error) {
	var res protocol.ReceiptsResult
	err := c.call(ctx, protocol.Request{Op: protocol.OpReceipts, Conv: conv, AfterUser: afterUser, Limit: limit}, true, &res)
	return res, err
}

// ReadEvents returns the channel of read pushes: the user's own reads (made
// on any device, this one included: clear the badge of Conv up to Seq),
// and, in direct conversations and groups of at most
// [protocol.MaxReceiptMembers] members, the other members' reads
// (receipts: User has read up to Seq). Only reads that move a cursor come,
// and quick successive reads of one user in one conversation may come as
// one. Best effort like [Client.PresenceEvents]: dropped when the channel
// is full, and missed while disconnected (ask [Client.Receipts] after a
// reconnect). It is closed when the client stops.
func (c *Client) ReadEvents() <-chan protocol.ReadFrame { return c.reads }

func (c *Client) onRead(f protocol.ReadFrame) {
	c.stats.reads.Add(1)
	select {
	case c.reads <- f:
	default:
		c.stats.dropped.Add(1)
	}
}
