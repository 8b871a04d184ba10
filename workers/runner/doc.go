// Package runner is the one runner behind every natter worker role (persist,
// fanout, receipts, push, webhooks). A role is a [Handler]; the runner feeds it
// batches from a durable pull consumer and maps its [Result]s to JetStream
// acknowledgements:
//
//   - [Ack]: msg.Ack.
//   - [Retry]: msg.NakWithDelay; on the consumer's last delivery the message
//     is dead-lettered instead, so it is never silently dropped.
//   - [Poison]: a copy goes to the role's dead-letter subject
//     (subjects.DLQ(role), kept by the DLQ stream) with Natter-DLQ-* headers,
//     then msg.TermWithReason.
//
// Replicas of a role are separate processes, each with its own Runner, that
// share one durable consumer: adding a replica is starting another process.
// JetStream spreads messages over the replicas; with several replicas or a
// Concurrency above one, messages are handled out of order and, after a
// crash or an expired AckWait, more than once. Handlers must therefore be
// idempotent and must not depend on order.
//
// Inside one Runner a Consume callback feeds a bounded queue; each of
// Concurrency loops takes one message (waiting for it), then whatever else is
// already queued up to BatchSize without waiting, and calls Handle. A panic in
// Handle, or a result slice of the wrong length, retries the whole batch.
//
// Shutdown: [Runner.Stop] drains the consume context (no new pulls; messages
// already received are still handled), waits for its Closed channel, for every
// Handle call and its acks, and flushes the connection. Then the caller stops
// its micro services and drains the connection.
package runner
