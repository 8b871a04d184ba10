package streams

import "time"

// Default dedup windows (see [Config]): nats-server holds every id of a
// window in memory, so memory grows with rate x window.
const (
	DefaultDedupWindow       = 30 * time.Second
	DefaultEventsDedupWindow = 45 * time.Second
)

// Config sizes the definitions. Zero values take the documented defaults.
type Config struct {
	// Replicas of every stream and bucket. Zero means 1; use 3 on a cluster.
	Replicas int
	// HotTier is how many newest messages of each conversation the MSGS
	// stream keeps (MaxMsgsPerSubject). Zero means 10,000.
	HotTier int64
	// DedupWindow is JetStream's Nats-Msg-Id window on MSGS (and INGEST).
	// nats-server keeps every id of the window in memory (and rebuilds them
	// at start), about 130 bytes a message on every replica, so the window
	// is short: it covers an append's own retries (the edge's 15 s request
	// timeout) and a client's resend soon after; older retries are answered
	// by the append's check of the log and the archive. Zero means 30s.
	DedupWindow time.Duration
	// PresenceTTL is how long the PRESENCE bucket keeps the marker of an
	// online lease that expired (the leases' own TTL is the edge's,
	// edge.Config.PresenceLease). Zero means 90s.
	PresenceTTL time.Duration
	// SummariesMaxAge is how long the SUMMARIES bucket keeps a
	// conversation's summary after it was written: a conv.list page reads
	// the summaries listed within it with one batched read, older ones
	// from the store. It also bounds how long a summary outlives a change
	// that crashed before dropping it. Zero means 6h.
	SummariesMaxAge time.Duration
	// MaxDeliver is how often a worker consumer delivers a message before it
	// is dead-lettered. Zero means 10.
	MaxDeliver int
	// AckWait of worker consumers. Zero means 30s.
	AckWait time.Duration
	// EventsMaxAge is how long the EVENTS stream keeps an event, the
	// furthest back a consumer can replay. Zero means 7 days (168h).
	EventsMaxAge time.Duration
	// EventsDedupWindow is the EVENTS stream's Nats-Msg-Id window: an event
	// re-published within it (a redelivered log entry, an outbox sweep) is
	// stored once. nats-server keeps every id of the window in memory (and
	// rebuilds them at start), about 130 bytes an event on every replica.
	// It exceeds the worker AckWait (30s) so that a log entry redelivered
	// to the events role is stored once. Zero means 45s (capped at
	// EventsMaxAge).
	EventsDedupWindow time.Duration
	// MemoryStorage puts streams in memory instead of files (tests only).
	MemoryStorage bool
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.HotTier <= 0 {
		c.HotTier = 10_000
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = 90 * time.Second
	}
	if c.SummariesMaxAge <= 0 {
		c.SummariesMaxAge = 6 * time.Hour
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.EventsDedupWindow <= 0 {
		c.EventsDedupWindow = DefaultEventsDedupWindow
	}
	if c.EventsMaxAge <= 0 {
		c.EventsMaxAge = 7 * 24 * time.Hour
	}
	return c
}
