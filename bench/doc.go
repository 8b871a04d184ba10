// Package bench is natter's load generator: "natter bench <scenario>".
//
// It drives natter through the Go client SDK (package client) and, in the
// same run and with the same generator, raw nats-server baselines (nats.go
// over ws://, JetStream publish, InsertMany into the same store), so that
// the ratios hold on a noisy machine. The target is an in-process natter dev
// (the default: node.Start with a temporary data dir and free ports) or
// running edges (--url, --jwt-secret).
//
// Scenarios: relay (1:1 conversations), fanout (one sender into a group),
// persist (sustained persisted msgs/s with the PERSIST backlog), history
// (newest-page latency with 10k and 1M stored messages; with
// --history-mode archive, pages older than the hot tier, from MongoDB), idle (memory and
// CPU per idle connection), storm (an edge killed and restarted under N
// clients) and suite (a quick run of all of them that writes a JSON report).
//
// With --procs N the client side runs in N child processes (the current
// binary re-executed with a hidden first argument), each below the
// per-process open-file limit; their results are merged. With the server
// in-process, --procs 1 or more also splits CPU time between the server
// (this process) and the generator (the children).
package bench
