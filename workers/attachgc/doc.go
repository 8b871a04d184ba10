// Package attachgc deletes attachments no message carries any more: with
// [Handler.DropMessages], those of deleted (recalled) messages, which the
// persist role calls for each delete entry it applies (and the retention
// sweeper for the messages it removes); and, with [Sweeper] (the attachgc
// worker role), uploads no message carries once they are older than the
// expiry (a day by default). An attachment carried by several messages goes
// with the last of them.
package attachgc
