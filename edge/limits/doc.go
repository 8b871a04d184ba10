// Package limits holds the edge's deployment-wide limits: per-user message
// and REST rates and connections per user, which hold across every
// connection on every edge, and the per-IP connection rate and concurrent
// connections, which each edge keeps for itself.
//
// No check costs a NATS round trip. Each edge keeps a token bucket per user
// in memory and takes from it locally ([Shared.Take]); every Config.Share
// (200 ms) it publishes what its users took, and the count of their
// connections that changed, in one message on subjects.LimitsUsage, and
// debits the buckets of the users the other edges report. So every edge's
// bucket for a user sees the usage of all edges, late by at most one share
// interval plus the NATS latency: the bound is approximate, within the
// slack documented on [Config] (docs/protocol.md, "Limits").
package limits
