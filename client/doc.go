// Package client is the Go SDK of natter: one [Client] holds one WebSocket
// to an edge (wire protocol v1, package edge/protocol), keeps it up across
// disconnects, edge restarts and lame-duck drains, and turns the edge's
// best-effort pushes into an exactly-once, in-order stream of messages.
//
//	c, err := client.Dial(ctx, client.Config{URLs: []string{"ws://localhost:8080/v1/ws"}, Token: tok})
//	...
//	conv, _ := c.CreateDirect(ctx, "bob")
//	ack, err := c.Send(ctx, conv.ID, "hi")
//	for m := range c.Messages() { ... }
//
// # Sending
//
// [Client.Send] gives every message a client message id (cmid) and re-sends
// it with the same cmid until the edge answers: after a disconnect (on the
// next connection, possibly to another edge), after a timeout, and after
// the retryable errors unavailable and rate_limited (with exponential
// back-off and full jitter). The edge stores a cmid once, so a message is
// stored exactly once and every retry gets the same id and seq back. Only
// the first frame of a cmid Send made itself carries the protocol's first
// flag (it spares the edge an idempotency lookup); resends never do. A
// send waits, at most 2 s, for its connection's first sync: after a
// reconnect the sends held meanwhile go once the client has caught up, not
// in front of the sync (the edge answers a connection's requests in
// order).
//
// Requests from several goroutines are in flight on the one connection
// together: their frames are queued, and whichever caller finds no write
// in progress writes all that are queued in one system call. The edge
// answers a connection's requests one after the other, in the order their
// frames were written; calls made one after the other from one goroutine
// keep their order. [Client.SendAll] sends a batch pipelined (one write,
// one wake-up of the caller for the batch) with the guarantees of Send per
// message and the batch's order (except around a retryable error, see
// there). A failed write closes the connection; every request waiting for
// a reply then sees the disconnect and is retried as above.
//
// # Delivery
//
// [Client.Messages] delivers every message of every conversation of the
// user exactly once, and per conversation in seq order (there is no order
// across conversations). Per conversation the client keeps next, the seq it
// expects (its cursor + 1), and a buffer of messages that came early:
//
//   - a message with seq < next is a duplicate and is dropped
//     ([Stats].Duplicates);
//   - seq == next is delivered; next moves on, and buffered successors are
//     delivered with it;
//   - seq > next is buffered, and the conversation needs a sync from its
//     cursor ([Stats].Gaps).
//
// Pushes and sync replies go through these same rules, so pushes that
// arrive while a sync runs are held back and released in order once the
// sync has caught up. One sync request is in flight at a time; gaps found
// meanwhile are coalesced into the next one, which names only the
// conversations that need it. A reply that says more=true is followed by
// another sync from the new cursor.
//
// After every connect and reconnect the client syncs with all its cursors.
// The edge subscribes the user's deliveries before it sends hello, so a
// message is either pushed on the new connection or returned by that sync
// (or both: then the duplicate is dropped). Nothing falls in between.
//
// Where conversations start: at the first sync after [Dial], conversations
// in Config.Cursors resume after their cursor, and the others start at
// their head (the application loads older pages with [Client.History]) or,
// with Config.FromStart, at seq 0. A conversation that appears later (in a
// later sync reply or as a push for a conversation the client did not know)
// is new to the user: it was created, or the user was added, since. It
// starts at 0, so a conversation created while a device was offline is
// delivered from seq 1. A conversation a sync reply leaves out is one the
// user no longer belongs to; it is dropped from [Client.Cursors].
//
// So a new installation dials without cursors (and loads the newest page
// of each conversation with [Client.History]), while one that restarts
// dials with the cursors it persisted and FromStart set, so that a
// conversation created while it was not running starts at 0 as well.
//
// [Client.Cursors] returns the last seq handed to the Messages channel per
// conversation: persist them with the messages and pass them as
// Config.Cursors to the next Dial. Unless Config.AutoAck is negative, the
// client also reports them to the edge (ack frames, at most once per
// interval per conversation, only when they moved).
//
// # Back-pressure
//
// The socket reader never waits for the application. Messages the
// application has not taken yet are queued inside the client; when more
// than Config.MaxPending are queued, the reader stops reading until the
// application catches up. Replies to requests wait meanwhile, and if it
// lasts the edge closes the socket as a slow consumer (close 4008); the
// client then reconnects and syncs, so nothing is lost. Drain Messages
// promptly: it is the only way the stream moves on.
//
// # Presence and typing
//
// [Client.SubscribePresence] watches users who share a conversation with
// the caller and returns their state; changes arrive on
// [Client.PresenceEvents]. The edge forgets watches with the connection,
// so after every reconnect the client subscribes the watched users again
// and sends their current state on PresenceEvents. [Client.SetTyping]
// signals typing to the other members of a conversation; theirs arrive on
// [Client.TypingEvents]. Both channels are best effort: the reader never
// waits for them, and an event that finds its channel full
// (Config.EventBuffer) is dropped and counted ([Stats].DroppedEvents).
//
// # Read receipts
//
// [Client.MarkRead] moves the user's read cursor; every read that moves a
// cursor arrives on [Client.ReadEvents] on all the user's devices (badges
// clear everywhere) and, in direct conversations and groups of at most
// [protocol.MaxReceiptMembers] members, on the other members' devices.
// [Client.Receipts] pages the read cursors of a conversation's members,
// for any group size, and after a reconnect. ReadEvents is best effort
// like the other event channels.
//
// # Conversation events
//
// [Client.ConvEvents] carries the changes of the user's conversations: a
// conversation created with the user, the user added to or removed from a
// group, members added or removed, a group renamed ([Client.Rename]), each
// with the conversation's rev. The client drops a push older than what it
// already told (a rev at or below), and after every reconnect compares the
// revs of its sync reply with what it told: a conversation it did not know
// comes as added, one the user is no longer in as removed, one whose rev
// moved as [ConvChanged] (read it again with [Client.Conversation]). Best
// effort like presence: an event that finds the channel full is dropped.
//
// # Connections
//
// Dial tries Config.URLs in order. Reconnects back off exponentially with
// full jitter (Config.Backoff up to Config.MaxBackoff) and move to the next
// URL after each failure. An edge that drains (bye with reconnect, close
// 4010) makes the client reconnect to the next URL at once, after a small
// random delay. A token rejected at connect, or a close 4001 (expired token)
// when there is no Config.TokenFunc to get a new one, stops the client:
// [Client.Err] says why and [Client.Done] is closed. A connection on which
// nothing (no frame, no ping) is heard for twice the edge's ping interval
// (to 2.5 times) is considered dead and replaced. A frame that breaks
// RFC 6455 (reserved bits set, a masked or unknown frame, a fragmented or
// long control frame, a continuation out of place) closes the connection
// with 1002 (protocol error) and a reason naming the problem; the client
// logs it and reconnects like after any disconnect.
//
// The client reads the edge's frames itself: frames that arrive together
// are taken with one read and handed on in place (docs/design.md).
package client
