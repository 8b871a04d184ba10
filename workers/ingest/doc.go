// Package ingest is the worker role that takes fire-and-forget sends of
// high-volume producers: a service publishes
//
//	subject  im.ingest.<conv>
//	header   Nats-Msg-Id: <cmid>
//	payload  {"from": "<service identity>", "body": "...", "type": "..."}
//
// to the INGEST stream (a work queue; a JetStream publish gets the stream's
// ack, so the producer knows it is durable), and the role's [Handler],
// behind the shared runner on the durable consumer INGEST, appends each one
// to the conversation log exactly like a client send: msglog.Append with
// Conv from the subject, From = "from" and Cmid = Nats-Msg-Id. So the same
// idempotency holds: a re-published Nats-Msg-Id is dropped by the stream's
// dedup window, and after it by the append's retry check of the log and the
// archive (same conv, from and cmid -> same message id, nothing new
// stored). Nats-Msg-Id is therefore the
// message's cmid: 1..64 characters of [A-Za-z0-9_-], and unique across the
// ingest stream within its dedup window (use a UUID, or prefix it with the
// service's name), since JetStream deduplicates by it stream-wide.
//
// A message that can never be appended is poison and goes to the dead
// letter subject im.dlq.ingest with the reason: a payload that is not JSON,
// a missing or invalid from, Nats-Msg-Id or body, a body over the limit, a
// reserved type (edit, delete), an unknown conversation. Transient failures
// (the conversations service or JetStream unavailable) are retried.
//
// Order: inside a batch, the messages of one conversation are appended in
// stream order (different conversations in parallel). With several
// replicas, or after a retry, two messages of one producer to one
// conversation can be appended in either order; a producer that needs its
// order sends through the service API and waits for each reply.
package ingest
