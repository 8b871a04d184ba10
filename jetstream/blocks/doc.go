// Package blocks reads and writes the users a user blocks: the key
// block.<user> of the PRESENCE bucket (subjects.PresenceBlockKey), whose
// value is the blocked user ids, sorted, comma-separated (at most
// [MaxBlocks]). The conversations service writes it (block, unblock) with
// a compare-and-set on the key's revision and reads it for the send checks
// of direct conversations (loaded with their members into the member
// caches, so no read per message); the edges read it with a watched
// user's presence, in the same batched read, to hide that user's presence
// from the users they block, and follow changes on the user's presence
// subject ([Event]).
package blocks
