package client

import "sync/atomic"

// Stats are counters since Dial.
type Stats struct {
	// Connects counts established connections (hello received), the first
	// included; Reconnects those after the first.
	Connects, Reconnects uint64
	// Syncs counts sync replies applied (a sync with many cursors may take
	// several requests).
	Syncs uint64
	// Pushes counts msg frames received.
	Pushes uint64
	// Delivered counts messages queued for the Messages channel (each
	// message once); Synced is how many of them came from sync replies
	// rather than pushes: the gaps filled.
	Delivered, Synced uint64
	// Duplicates counts messages (pushed or synced) dropped because they
	// had been delivered already or were already buffered.
	Duplicates uint64
	// Gaps counts pushes that arrived ahead of the next expected seq and
	// were held back until the gap was filled.
	Gaps uint64
	// Sends counts acknowledged sends; SendRetries the send frames sent
	// again with the same cmid.
	Sends, SendRetries uint64
	// Acks counts delivered cursors the edge confirmed.
	Acks uint64
	// Presence counts presence events of watched users (pushes, and the
	// states subscribed again after a reconnect); Typing typing pushes;
	// Reads read pushes; ConvEvents the conversation events handed to
	// [Client.ConvEvents] (pushes and those made from sync replies);
	// DroppedEvents those of all four not delivered because their channel
	// was full.
	Presence, Typing, Reads, ConvEvents, DroppedEvents uint64
	// Reactions counts the reaction pushes received.
	Reactions uint64
	// Frames counts the request frames written, Writes the write system
	// calls that carried them (frames queued while a write is in progress
	// go out together in the next one), WriteErrors the failed writes
	// (each closes its connection, which the client then replaces).
	Frames, Writes, WriteErrors uint64
}

type counters struct {
	connects, reconnects, syncs, pushes, delivered, synced atomic.Uint64
	duplicates, gaps, sends, sendRetries, acks             atomic.Uint64
	presence, typing, reads, convEvents, dropped           atomic.Uint64
	reactions                                              atomic.Uint64
	frames, writes, writeErrors                            atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Connects: s.connects.Load(), Reconnects: s.reconnects.Load(), Syncs: s.syncs.Load(),
		Pushes: s.pushes.Load(), Delivered: s.delivered.Load(), Synced: s.synced.Load(),
		Duplicates: s.duplicates.Load(), Gaps: s.gaps.Load(), Sends: s.sends.Load(),
		SendRetries: s.sendRetries.Load(), Acks: s.acks.Load(),
		Presence: s.presence.Load(), Typing: s.typing.Load(), Reads: s.reads.Load(), ConvEvents: s.convEvents.Load(), DroppedEvents: s.dropped.Load(),
		Reactions: s.reactions.Load(),
		Frames:    s.frames.Load(), Writes: s.writes.Load(), WriteErrors: s.writeErrors.Load(),
	}
}
