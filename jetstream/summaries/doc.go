// Package summaries reads and writes the SUMMARIES bucket: a copy of each
// conversation's summary as conv.list shows it (natter.Conversation with
// member_count, rev, and the members of a direct conversation or a small
// group), key = conversation id, value JSON.
//
// The conversations service keeps the copy so that a page of a user's
// conversations costs one batched read ([Bucket.Get]) whether or not the
// service instance has the summaries in memory: after a restart (a deploy,
// and the reconnect storm after it) a page is not one store lookup per
// conversation. The copy is written back after a store read with a
// compare-and-set against the key's revision read before the store
// ([Bucket.PutAll]), and deleted after every change of the conversation
// ([Bucket.Drop]): a write-back that a change overtook fails instead of
// keeping the old summary. The bucket's MaxAge bounds how long a copy lives
// (and so a copy a crashed change left behind).
package summaries
