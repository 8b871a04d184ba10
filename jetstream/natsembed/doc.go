// Package natsembed runs an in-process nats-server with JetStream, the
// default when no NATTER_NATS_URL is configured (natter dev) and the server
// every test starts.
package natsembed
