package streams

import "time"

// Config sizes the definitions. Zero values take the documented defaults.
type Config struct {
	// Replicas of every stream and bucket. Zero means 1; use 3 on a cluster.
	Replicas int
	// HotTier is how many newest messages of each conversation the MSGS
	// stream keeps (MaxMsgsPerSubject). Zero means 10,000.
	HotTier int64
	// DedupWindow is JetStream's Nats-Msg-Id window on MSGS. Zero means 2m.
	DedupWindow time.Duration
	// IdemTTL is how long a send's idempotency record lives. Zero means 24h.
	IdemTTL time.Duration
	// PresenceTTL is how long the PRESENCE bucket keeps the marker of an
	// online lease that expired (the leases' own TTL is the edge's,
	// edge.Config.PresenceLease). Zero means 90s.
	PresenceTTL time.Duration
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
	// stored once. Zero means 1h (capped at EventsMaxAge).
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
		c.DedupWindow = 2 * time.Minute
	}
	if c.IdemTTL <= 0 {
		c.IdemTTL = 24 * time.Hour
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = 90 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.EventsDedupWindow <= 0 {
		c.EventsDedupWindow = time.Hour
	}
	if c.EventsMaxAge <= 0 {
		c.EventsMaxAge = 7 * 24 * time.Hour
	}
	return c
}
