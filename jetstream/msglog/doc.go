// Package msglog is the conversation log: it appends accepted messages to the
// MSGS stream and reads pages of its hot tier.
//
// Guarantees of [Log.Append]:
//
//   - No loss: an [natter.Ack] is returned only once JetStream has stored the
//     message.
//   - No duplicates: the message id is derived from (conv, from, cmid)
//     ([MessageID]); a retry inside the stream's dedup window gets
//     JetStream's duplicate ack; before that, a send not marked
//     [Send].FirstAttempt is checked for an earlier copy: in the hot tier
//     above the PERSIST consumer's ack floor, then in the archive
//     ([Config].Archive). Either way the sender gets the original id, seq
//     and ts back with Dup set, for as long as the hot tier or the archive
//     holds the message. No record per message is kept for this (nats-server
//     holds every subject of a stream in memory). Marking a resend as a
//     first attempt is the caller's own duplicate.
//   - Order: each conversation's seq is 1, 2, 3 ... without gaps. Appends are
//     compare-and-set on the subject's last stream sequence
//     (Nats-Expected-Last-Subject-Sequence), so writers in different
//     processes can never hand out the same seq; inside one process appends
//     to one conversation are serialised by a per-conversation lock.
//
// Every log entry carries block anchors (headers [HeaderBlk], [HeaderPBlk]):
// messages are grouped in blocks of [BlockSize] seqs and each entry points at
// the stream sequence of the first entry of its block and of the previous
// block; and a back window ([HeaderPrev]): the stream sequences of the
// conversation's previous [Window] entries. A page read fetches the head
// (one direct get), takes the page's stream sequences from its window,
// hopping back one direct get per [Window] seqs while the page starts
// further back, and reads the entries by sequence: one batched read from
// the first when they lie close together in the stream, else one direct
// get each, all in flight at once. Its cost depends on the page size and
// how far back from the head it starts, not on how many messages the
// conversation holds nor on how many other entries lie between its own.
// Entries written before the windows existed are read over the block
// anchors with one batched direct get (next_by_subj, batch, no_hdr) that
// walks, inside the server, the stream entries between the page's first
// and last entry.
//
// Messages older than the hot tier (MaxMsgsPerSubject of MSGS) are reported
// with [ErrTrimmed] (as a [*TrimmedError] carrying the oldest seq still in the
// hot tier); callers read those from MongoDB.
package msglog
