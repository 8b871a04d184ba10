// Package webhooks is the worker role that delivers events to configured
// HTTP endpoints: those of the events stream (subjects
// im.evt.<kind>.<conv>) and the message events, which are the entries of
// the log (MSGS, im.msg.<conv>; docs/events.md, "Message events").
//
// # Consumers
//
// Every [Endpoint] has its own durable pull consumer on the events stream,
// WEBHOOK_<NAME> (see [ConsumerConfig]), filtered to the endpoint's kinds
// other than the message kinds, and, if it selects a message kind (or
// every kind), one of the same name on MSGS ([MessageConsumerConfig]),
// both created or updated by [EnsureConsumers]. The consumer on MSGS posts
// each entry of a selected kind as the envelope the events role would
// publish ([events.MessageMsg]); the consumer on the events stream skips
// message events there (the events role's copies). Each consumer is run
// by its own [runner.Runner] (role "webhook_<name>"), so a slow or failing
// endpoint never delays another, and worker replicas share each
// endpoint's consumers.
// An event is acknowledged only after the endpoint answered 2xx: a worker
// that stops or dies resumes, in any replica, from where the endpoint was.
//
// # Requests
//
// Each attempt is an HTTP POST of the event JSON exactly as stored in the
// stream (for a message event, the envelope of the log entry), with the
// headers
//
//	Content-Type:      application/json
//	Natter-Event-Id:   <event id>      same on every attempt: deduplicate on it
//	Natter-Event-Kind: <kind>
//	Natter-Timestamp:  <unix seconds when this attempt was signed>
//	Natter-Signature:  v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//	Natter-Attempt:    <attempt number, from 1>
//
// Receivers check the signature with [Verify] over the raw body, before
// decoding it, and reject timestamps far from their clock (replays).
// Redirects are not followed.
//
// # Retries and dead letters
//
//   - 2xx: delivered; the event is acked.
//   - A transport error, a timeout, 3xx, 408, 425, 429 or 5xx: the attempt
//     failed; the event is tried again after Backoff, doubled after every
//     failure and capped at [MaxBackoff] (a Retry-After on 429 or 503 can
//     lengthen the wait), through the runner's Retry (NakWithDelay).
//   - Any other 4xx is permanent: the receiver read the request and refused
//     it, and the same bytes will get the same answer. The event is
//     dead-lettered at once rather than retried for minutes, which with
//     ordered delivery would hold back every later event; the dead letter
//     keeps the event for a replay once the receiver is fixed.
//   - The failure of attempt MaxAttempts dead-letters the event.
//
// A dead letter goes through the runner's Poison path: the event, exactly as
// stored (a message event: the log entry), is published to [DeadLetterSubject] (im.dlq.webhook_<name>, kept
// by the DLQ stream) with the runner's Natter-DLQ-* headers (reason,
// stream, sequence, deliveries) and [HeaderDLQEndpoint], [HeaderDLQAttempts],
// [HeaderDLQStatus] and [HeaderDLQError], then terminated. Attempts are
// counted from the delivery count, not by a server-side MaxDeliver, so an
// event whose last attempt died with its worker is still dead-lettered.
//
// # Guarantees
//
// Delivery is at least once: an endpoint that answered 2xx but whose answer
// was lost (timeout, worker killed before the ack) gets the event again.
// With MaxInFlight 1 (the default) an endpoint receives its events of each
// consumer in stream order, hence in order per conversation (message events
// in seq order); the message events and the other events come through two
// consumers, so their relative order is not kept; with MaxInFlight above 1,
// order is not kept.
//
// # Metrics
//
// natter_webhook_deliveries_total{endpoint,result} counts attempts that
// succeeded ([ResultSuccess]) or will be retried ([ResultRetry]) and events
// given up on ([ResultDeadLetter]);
// natter_webhook_request_duration_seconds{endpoint} is the HTTP latency;
// natter_webhook_delivery_lag_seconds{endpoint} the time from an event's
// timestamp to its delivery. The runners add natter_worker_* with role
// "webhook_<name>".
package webhooks
