package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Policy is how long a class of conversations keeps its messages. Zero
// fields keep forever.
type Policy struct {
	// Days removes messages older than this many days. Zero means no age
	// limit.
	Days int
	// Messages keeps the newest this many messages of each conversation.
	// Zero means no count limit.
	Messages int
}

// IsZero reports whether p keeps everything.
func (p Policy) IsZero() bool { return p.Days == 0 && p.Messages == 0 }

func (p Policy) String() string { return fmt.Sprintf("days=%d,messages=%d", p.Days, p.Messages) }

// Config of the role. Zero values take the documented defaults.
type Config struct {
	// Direct and Group are the policies of direct conversations and of
	// groups; a conversation's own policy (the admin API) overrides
	// either field. Zero means keep forever.
	Direct, Group Policy
	// Interval between sweeps. Zero means 1m.
	Interval time.Duration
	// Slot is the width of a schedule slot: a conversation due at t is
	// checked by the first sweep after the end of t's slot. Zero means 1m.
	Slot time.Duration
	// MaxPerCheck bounds the messages one conversation's check removes in
	// one sweep (the rest go in the next). Zero means 4096.
	MaxPerCheck int
	// DropAttachments deletes the attachments of removed messages that no
	// other message carries (attachgc.Handler.DropMessages); it is called
	// with the ids of the removed messages that carried attachments before
	// they leave the archive. Nil means the attachments stay (the
	// messages_expired event still lists the ids).
	DropAttachments func(ctx context.Context, msgIDs []string) error
	// Now is the clock; nil means time.Now (tests move their own).
	Now func() time.Time
	// Logger; nil means discard.
	Logger *slog.Logger
}

// Actor is the actor of the role's events.
const Actor = "_retention"

func (c Config) withDefaults() (Config, error) {
	for _, p := range []Policy{c.Direct, c.Group} {
		if p.Days < 0 || p.Messages < 0 {
			return c, fmt.Errorf("%w: negative policy %s", ErrInvalid, p)
		}
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Slot <= 0 {
		c.Slot = time.Minute
	}
	if c.MaxPerCheck <= 0 {
		c.MaxPerCheck = 4096
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
