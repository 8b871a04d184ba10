package push

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config of the push handler. Zero values take the documented defaults.
type Config struct {
	// Providers by provider name (pushreg.APNs, pushreg.FCM,
	// pushreg.WebPush). A device registered with a provider not here gets
	// nothing. Empty means the handler must not be run
	// ([Handler.Consumes] is false): the role then takes no entries.
	Providers map[string]Provider
	// Preview puts the message body in the notification. False (the
	// default) sends DefaultText instead, so bodies never reach the
	// providers.
	Preview bool
	// PreviewMax bounds a previewed body, in bytes (cut at a rune
	// boundary, with "…"). Zero means 1,000.
	PreviewMax int
	// SkipOnlineUsers sends nothing to a user connected on any device.
	// False (the default) decides per device: a device with a socket open
	// gets the message over it and no push, each of the user's other
	// registered devices gets one.
	SkipOnlineUsers bool
	// MaxAge is the age (since the message was accepted) beyond which an
	// entry is not pushed: a backlog after an outage of the role does not
	// wake phones for old messages. Zero means 1h.
	MaxAge time.Duration
	// Attempts is how many times one notification is sent before a
	// transient failure (429, 5xx, no answer) redelivers the entry. Zero
	// means 3.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each
	// further one; a Retry-After longer than it is honoured. Zero means
	// 250ms.
	Backoff time.Duration
	// MaxWait is the longest wait the handler sits out itself; a longer
	// Retry-After redelivers the entry after it instead. Zero means 5s.
	MaxWait time.Duration
	// Concurrency is how many notifications are sent at once. Zero means 32.
	Concurrency int
	// Muted reports whether user muted conv (no pushes). Nil means nobody
	// muted anything.
	Muted func(ctx context.Context, conv, user string) (bool, error)
	// Logger; nil means discard. Tokens and bodies are never logged.
	Logger *slog.Logger
	// Registerer receives the natter_push_* metrics. Nil means none.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.PreviewMax <= 0 {
		c.PreviewMax = 1000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = 250 * time.Millisecond
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
