// Package gcpace paces the Go garbage collector of a natter server process
// under load.
//
// With Go's default (GOGC=100) a collection starts whenever the heap has
// grown by the live heap since the last one. natter's server processes keep a
// small live heap (tens of MB) and allocate fast (tens of KB per relayed
// message, most of it in nats-server, nats.go and the embedded store), so at
// a few thousand messages per second they collect several times a second.
// Each collection's mark phase holds a processor for up to ~10 ms on a
// 2-core machine (the fractional mark worker) and slows the allocating
// goroutines (assists): the sends in flight then wait. docs/benchmarks.md,
// "Latency at 2,000 msg/s", has the execution traces.
//
// The pacer samples the allocation rate and raises the GC percent so that the
// heap's headroom holds [Config.MinInterval] of allocation (a collection at
// most about every MinInterval), within [Config.MaxHeadroom] of extra memory
// and never below the base percent. When the rate drops it lowers the percent
// again; after 8 ticks (2 s) back at the base it collects and returns the
// free pages to the OS, so an idle process keeps Go's default memory use. A GOGC or GOMEMLIMIT the operator
// set in the environment wins: the pacer then stays off.
package gcpace
