// Package actions reads and writes the ACTIONS bucket: what the actions on
// a message (edits, deletion) made of it, so that history and sync return
// each message as it is now without replaying the log.
//
// The conversation log stays append-only: an edit or a delete is an entry
// of its own (type "edit" or "delete" with ref, docs/protocol.md). Whoever
// appends one (the edge for a client, the persist role for every entry it
// stores, so that a crash between the append and the write is repaired)
// applies it here with [Bucket.Apply]: one key per message that was acted
// on, <conv>.<block>.<seq> ([subjects.ActionsKey]), holding a [Record]: the
// latest edit's text and time, or the tombstone. Apply compares and sets
// against the key's revision and is idempotent (an edit counts only when
// it is newer than the one applied; a delete wins over every edit), so the
// edge and the persist role may both apply one entry, in any order.
//
// A deletion also marks the edit entries of the message (listed in its
// record) as deleted, so that the text is gone from every entry that held
// it. Readers fetch the records of a page with one batched direct get (one
// filter per 64 seqs, [Bucket.Page]) and apply them with [Decorate].
package actions
