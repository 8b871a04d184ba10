// Package fanout is the worker role that delivers each logged message to
// every member of its conversation: it takes entries from the shared FANOUT
// consumer, looks the members up in a cache (invalidated by membership
// notices) and publishes the message once per member on the member's core
// NATS delivery subject im.dlv.<user>, where every edge holding a socket of
// that user listens. A message is written once to the log; per-member state
// is a cursor, never a copy.
package fanout
