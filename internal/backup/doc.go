// Package backup backs up and restores a natter deployment: every JetStream
// stream, KV bucket and object store that jetstream/streams defines (as the
// streams they are, message by message with their stream sequences) and
// every collection of the MongoDB database, into a [Target] (a directory or
// an S3 bucket). It is what "natter backup", "natter backup verify" and
// "natter restore" run.
//
// A backup is a folder of files and a manifest.json written last: per
// stream its configuration, the sequences it covers, the message count and
// the file's sha256; per collection its document count and sha256; the
// durable consumers with their ack floors. A full backup copies everything;
// an incremental one copies the messages each stream received since its
// parent's last sequences, and every collection in full (docs/operations.md,
// "Backup and restore", says why and how the two tiers are cut).
//
// Restore replays the messages into fresh streams so that every message
// keeps its stream sequence (the log's back windows, block anchors and the
// consumers' positions are stream sequences): it creates each stream at its
// first sequence and fills the sequences of deleted messages with
// placeholders that it purges at the end (docs/design.md, "Backup and
// restore").
package backup
