// Package streams defines every JetStream stream, consumer and KV bucket natter
// uses, and applies them idempotently: applying twice changes nothing.
// Names come from package subjects.
package streams
