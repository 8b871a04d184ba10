// Package node wires one natter process together: the embedded servers (when
// no external URLs are configured), the NATS connection, the JetStream
// definitions, the MongoDB store, the edge and the worker roles, their
// health/readiness/metrics endpoints and their shutdown order. The natter
// binary and the end-to-end tests both start processes through it.
package node
