package convapi

import "context"

// OpReceipts is the op that returns the read seqs of a conversation's
// members, a page at a time (see [ReceiptsRequest]).
const OpReceipts = "receipts"

// Bounds of receipts and of read pushes.
const (
	// DefaultReceiptsLimit is the page size of receipts when limit is 0.
	DefaultReceiptsLimit = 100
	// MaxReceiptsLimit is the largest limit receipts accepts: each member
	// of a page costs one _id lookup of its read cursor.
	MaxReceiptsLimit = 200
	// MaxReceiptMembers is the largest conversation whose members get a
	// read push when one of them reads (receipts): direct conversations
	// and groups of at most this many members. In a larger group only the
	// reader's own devices get it. It is MaxInlineMembers, so the member
	// list comes with the conversation summary the service caches.
	MaxReceiptMembers = MaxInlineMembers
)

// ReceiptsRequest is the request of receipts: the read seqs of the members
// of Conv, sorted by user id, after the user id After ("" for the first
// page), at most Limit (1..MaxReceiptsLimit; 0 means
// DefaultReceiptsLimit). User must be a member.
type ReceiptsRequest struct {
	User  string `json:"user"`
	Conv  string `json:"conv"`
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// Receipt is one member's read cursor: Seq is the last seq User has read
// (0: nothing yet).
type Receipt struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// ReceiptsReply is the reply of receipts.
type ReceiptsReply struct {
	// Reads has one entry per member of the page, sorted by user id.
	Reads []Receipt `json:"reads"`
	// Next is set when more members follow: send it as After.
	Next string `json:"next,omitempty"`
}

// Receipts returns one page of the read seqs of conv's members (see
// [ReceiptsRequest]).
func (c *Client) Receipts(ctx context.Context, req ReceiptsRequest) (ReceiptsReply, error) {
	var out ReceiptsReply
	err := c.call(ctx, OpReceipts, req, &out)
	if out.Reads == nil {
		out.Reads = []Receipt{}
	}
	return out, err
}
