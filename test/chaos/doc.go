// Package chaos is natter's chaos suite: a real local cluster (three
// nats-server nodes with R3 streams, the store, two edges, worker
// replicas; package cmd/natter/cluster) under a load of Go SDK senders and
// receivers, while one fault at a time is injected: kill -9 and SIGSTOP of
// NATS nodes (the MSGS leader, the FANOUT consumer's leader), kill -9 of a
// persist worker between its MongoDB write and its ack, kill -9 of an
// edge, a poison message, a consumer reset and a consumer deleted and
// recreated under running workers, each with a full replay, a slow reader. Each scenario prints what was acked, stored
// and delivered and asserts that nothing acked was lost, stored twice,
// delivered twice to the application or delivered out of order.
//
// The tests build with the chaos tag only, so the default test run does
// not start them:
//
//	go test -tags chaos -count=1 -timeout 30m -v ./test/chaos/
//	go tool task test:chaos
//
// docs/operations.md, "Chaos suite", lists the scenarios and their figures.
package chaos
