package svcapi

import (
	"log/slog"
	"time"

	"github.com/natter-im/natter/jetstream/subjects"
)

// DefaultMaxBody is the body limit when Config.MaxBody is zero: 64 KiB, as
// for clients.
const DefaultMaxBody = 64 << 10

// MaxType is the longest message type, as for clients.
const MaxType = 32

// Config of the service ([Start]).
type Config struct {
	// Version is the service version in discovery (SemVer). Empty means
	// "0.0.0-dev".
	Version string
	// MaxBody is the largest message body in bytes. Zero means
	// DefaultMaxBody.
	MaxBody int
	// Timeout bounds the work of one request. Zero means 4s, below the
	// client's default 5s, so that callers get unavailable rather than
	// their own timeout.
	Timeout time.Duration
	// QueueGroup the replicas share. Empty means subjects.QueueAPI.
	QueueGroup string
	// Metadata annotates the service in discovery. Nil means none.
	Metadata map[string]string
	// Logger gets the service's logs. Nil means none.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "0.0.0-dev"
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Timeout <= 0 {
		c.Timeout = 4 * time.Second
	}
	if c.QueueGroup == "" {
		c.QueueGroup = subjects.QueueAPI
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
