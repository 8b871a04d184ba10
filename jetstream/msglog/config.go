package msglog

import (
	"log/slog"
	"time"
)

// Config of a [Log]. Zero values take the documented defaults.
type Config struct {
	// Logger receives warnings (no PERSIST consumer to bound the retry
	// check) and debug lines (append conflicts); scope it (component)
	// before handing it in. Nil means discard.
	Logger *slog.Logger
	// MaxRetries bounds how often one append re-reads the head after losing
	// the compare-and-set race before it fails with [ErrConflict]. Zero
	// means 50.
	MaxRetries int
	// HeadCacheSize is how many conversation heads the log keeps in memory
	// to append without reading the head first. Zero means 100,000.
	HeadCacheSize int
	// Archive answers the retry check of an append for messages the persist
	// worker has archived ([Archive]). Nil means the log alone: a retry is
	// then recognised only while its original is in the hot tier.
	Archive Archive
	// FloorTTL is how long the retry check reuses the PERSIST consumer's ack
	// floor before it reads it again (one JetStream API request). Zero means
	// 1s.
	FloorTTL time.Duration
	// AttemptTimeout bounds one attempt of an append (the head read, the
	// retry check and the publish's JetStream ack). An attempt that times
	// out, or that no server answers (the stream has no leader), is retried
	// with the same message id until the caller's ctx ends, so an append
	// stuck on a stream leader that stopped answering (a frozen or dead
	// node) goes to the new leader as soon as one is elected, instead of
	// waiting for the caller's deadline. Zero means 2s.
	AttemptTimeout time.Duration
	// Now is the clock that stamps each appended message's TS. Nil means
	// time.Now (tests move their own).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 50
	}
	if c.HeadCacheSize <= 0 {
		c.HeadCacheSize = 100_000
	}
	if c.FloorTTL <= 0 {
		c.FloorTTL = time.Second
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
