// Package revoke holds token revocations and user bans in the REVOKED
// KV bucket (jetstream/subjects.BucketRevoked): a [Writer] for the admin
// API, and a [View] that every edge keeps in memory, fed by a watcher of
// the bucket, so that checking a token costs no NATS round trip.
//
// Kinds of entry, by key:
//   - jti.<base64url(jti)>: the token with that id is revoked;
//   - user.<user>: the user's tokens issued before Entry.Before are revoked;
//   - dev.<user>.<device>: the same for one device of the user;
//   - ban.<user>: the user is banned (Entry.Reason) until Entry.Until
//     (zero: until unbanned).
//
// Every entry carries a per-key TTL that ends when the tokens it covers
// would have expired (a ban: at its expiry), so the bucket holds at most
// the revocations of one token lifetime plus the open-ended bans.
package revoke
