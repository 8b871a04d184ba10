// Package test holds natter's black-box end-to-end tests: whole natter
// processes (embedded NATS and FerretDB, edges, worker replicas) started
// in-process through internal/node and driven over real WebSockets.
package test
