// Package convsvc is natter's conversations service on the mesh: creating
// conversations, their members, read cursors and archived history, served
// as a nats.go micro service ([Start]) that any number of replicas run
// behind one queue group. Its contract (the ops, request and reply types,
// error codes, the typed client and the member cache) is package
// jetstream/convapi, which the edge imports without linking the store.
//
// # List cache
//
// Every instance caches users' conversation lists (Config.ListCacheSize,
// Config.ListCacheTTL): a reconnecting client's sync asks for its list.
// Membership checks (get, read, history, member changes) read the
// membership document instead: one _id lookup. A notice drops the named
// users' lists on every instance, a reconnect or a dropped notice drops
// them all, and a notice with no body (an older instance) drops them all
// too. The instance that makes a change drops the lists before it replies,
// and every lookup first applies the notices its connection has received,
// so a request sent after a change's reply sees the change on any instance
// served by the same NATS server. The list endpoint's data in micro's stats
// ($SRV.STATS) is the cache's [ListCacheStats].
//
// # Events
//
// With Config.Events set, the service publishes to the EVENTS stream after
// its writes and before its reply: conversation_created for a new
// conversation, member_joined / member_left for the users whose membership
// changed (none: no event), read_moved when a read cursor moved forward
// (see package events for the envelope and ids).
//
// # Errors
//
// Every field is validated before anything is written, so a bad request
// stores nothing. A valid change that fails half way (the store writes the
// memberships, the member chunks, the users' lists, then the group's head)
// still publishes its notice, and sending the same request again completes
// it: a membership written by a change that did not finish is completed by
// the next change naming that user (see workers/store members.go).
//
// # Replicas
//
// Any number of instances may run on one store, embedded FerretDB
// included: the member changes of one group are serialised by a lease lock
// in the store (a unique-_id insert), not by the instance, so concurrent
// creates and changes of different conversations run in parallel on every
// instance.
package convsvc
