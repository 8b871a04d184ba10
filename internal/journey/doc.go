// Package journey assembles one message's journey through natter (natter
// trace) from what natter keeps anyway, without reading any collection or
// stream through:
//
//   - appended: the MSGS entry (found through the log's back windows, a few
//     direct gets), its stream sequence and the time JetStream stored it
//     (exact); the edge that appended it and the trace context are in its
//     headers when the send was sampled for tracing (internal/tracing);
//   - archived: the PERSIST consumer's ack floor (persist acks an entry
//     once it is in MongoDB) and the time of that consumer's last ack (an
//     upper bound), and the archive's copy looked up by message id (the
//     conversations service, an _id lookup);
//   - delivered: the delivered cursors (CURSORS <user>.<device>.<conv>) of
//     the conversation's members, read with one filtered watch of their
//     keys: a cursor at or past the seq says the device had the message by
//     the time that cursor was last written (an upper bound);
//   - read: the members' read cursors (CURSORS <user>.<conv>), likewise.
package journey
