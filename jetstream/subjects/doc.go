// Package subjects builds every NATS subject, stream, consumer and KV bucket
// name natter uses. No other package writes a subject by hand: import this
// one, so that the whole namespace is visible (and checked) in one place.
//
// Subjects are lowercase, namespace first, ids last ("im.msg.<conv>").
// Streams, durables and buckets are UPPER ("MSGS", "PERSIST").
package subjects
