// Package retention is the retention sweeper, run by the persist role: it
// removes the messages a conversation's retention policy no longer keeps
// (older than N days, or beyond the newest N messages) from the archive
// (the messages collection and its blocks), the hot tier (the MSGS
// stream, a purge of the conversation's subject), the ACTIONS bucket and
// the attachment storage, unless the conversation is under legal hold,
// and publishes a messages_expired event for each removal.
//
// A [Sweeper] runs one sweep per interval, one persist replica at a time (a
// lease lock in the store), and reports an explicit [Result] per
// conversation it checked. A sweep reads only what is due: the log entries
// appended since the previous sweep (headers only, to find new
// conversations and those past a message limit) and the schedule slots
// whose time has come, each a list of conversations in one document read
// by _id; it never scans the archive (docs/design.md, "Retention").
package retention
