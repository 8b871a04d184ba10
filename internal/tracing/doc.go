// Package tracing carries one message's OpenTelemetry trace across natter:
// the edge's send (a root span, sampled at Config.SampleRatio) and its
// append, the trace context in the log entry's NATS headers (W3C
// traceparent, [Header]), one span per worker role that handles the entry
// (the runner starts it: every role gets it once), the trace context in the
// fan-out's delivery message, and the edge's push to the recipient's
// devices.
//
// Tracing is off until [Setup] installs an OTLP/HTTP exporter; off, every
// hook returns after one atomic load, allocating nothing. On, a send that is
// not sampled costs the sampler's decision and carries no header; workers
// and edges trace exactly the entries that carry one (parent-based).
//
// The tracer is process-wide (as OpenTelemetry's global provider is), so
// that the hooks in the edge, the log and the runner stay one line each and
// need no configuration handed through.
package tracing
