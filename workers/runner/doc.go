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
// already queued up to BatchSize without waiting (or, with a Config.Linger,
// waiting up to that long for more while Config.LingerOn accepts the batch's
// messages), and calls Handle. A panic in
// Handle, or a result slice of the wrong length, retries the whole batch.
//
// Pulls expire after Config.PullExpiry (5s) with an idle heartbeat every
// Config.PullHeartbeat (1s): a pull lost with its consumer leader (a node
// killed) is replaced after two missed heartbeats, not after nats.go's 30s.
//
// A lost consumer: when the consume loop ends before Stop (the consumer was
// deleted, the server ended the pull for good), the Runner looks the
// consumer up again by its durable name, at once and then with a backoff
// from 250ms up to 5s, until Stop, and consumes it again once it exists.
// It never creates it: definitions belong to package streams and "natter
// streams apply". Meanwhile [Runner.Ready] fails (a process's /readyz
// answers 503), Stats.Consuming is false and the natter_worker_consuming
// gauge drops; natter_worker_consume_lost_total counts the losses.
//
// Shutdown: [Runner.Stop] drains the consume context (no new pulls; messages
// already received are still handled), waits for its Closed channel, for every
// Handle call and its acks, and flushes the connection. Then the caller stops
// its micro services and drains the connection.
package runner
