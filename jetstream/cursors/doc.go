// Package cursors reads and writes the CURSORS bucket: each device's
// delivered cursor (ack, key <user>.<device>.<conv>) and each user's read
// cursor (key <user>.<conv>), values in decimal.
//
// Cursors only move forward: a write compares and sets against the key's
// last revision ([Bucket.Raise], [Bucket.RaiseAll]), so concurrent writers
// (the conversations service for a read, the persist role for a user's own
// sends) never move one back. A page of a user's conversations reads its
// cursors with one batched direct get ([Bucket.Get]), not one per key.
package cursors
