// Package attachgc is the attachgc worker role: it deletes the attachments
// of deleted (recalled) messages, reading the delete entries of the log
// (MSGS, durable consumer ATTACHGC: the message_deleted events), and, with [Sweeper], uploads no
// message carries once they are older than the expiry (a day by default).
// An attachment carried by several messages goes with the last of them.
package attachgc
