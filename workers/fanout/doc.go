// Package fanout is the worker role that delivers each logged message to
// every member of its conversation: it takes entries from the shared FANOUT
// consumer, looks the members up in a cache (invalidated by membership
// notices) and publishes the message once per member on the member's core
// NATS delivery subject im.dlv.<user>, where every edge holding a socket of
// that user listens. A message is written once to the log; per-member state
// is a cursor, never a copy.
//
// A conversation of at least [DefaultBroadcastMin] members (or the
// [WithBroadcastMin] setting) has its batches broadcast instead: published
// once, with the member list, on im.dlv.grp.all (subjects.DeliverGroups),
// which every edge subscribes to; each edge looks every listed member up
// and queues the batch on the sockets it holds. For a group of 1,000
// members on two edges that is one NATS message per edge where the
// per-member path makes 1,000. From [DefaultConvBroadcastMin] members
// (1,000; [WithConvBroadcastMin]) the broadcast names the conversation
// instead of listing its members, and each edge looks the members up in its
// member cache, walking the smaller of the member list and its own
// connected users: a message into a group of 100,000 with 10 members online
// costs about what one into a group of 200 does. A conversation whose member count crosses
// the minimum changes path, and a device can then get a push of one path
// after a later one of the other: the client SDK drops duplicates and
// syncs a gap, as it does when fan-out replicas reorder.
package fanout
