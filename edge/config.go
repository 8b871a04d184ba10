package edge

import (
	"io/fs"
	"log/slog"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
)

// Config of an edge. Zero values take the documented defaults.
type Config struct {
	// MaxBody is the largest client frame or REST body in bytes, checked
	// before anything is parsed. Zero means 64 KiB (protocol.DefaultMaxBody).
	MaxBody int
	// Origins is the allow-list of browser Origins ("https://app.example").
	// Requests without an Origin header (native clients) are always allowed.
	// Empty means no browser origin is allowed; "*" must be listed
	// explicitly to allow any.
	Origins []string
	// Rate is the per-connection request rate (token bucket refill per
	// second). Zero means 20 (protocol.DefaultRate).
	Rate float64
	// Burst is the token bucket size. Zero means 100 (protocol.DefaultBurst).
	Burst int
	// RESTRate is the REST request rate per user over all edges (token
	// bucket refill per second; every request with a valid token counts;
	// shared like Limits). Zero means 20 (protocol.DefaultRate).
	RESTRate float64
	// RESTBurst is the REST token bucket size per user. Zero means 100
	// (protocol.DefaultBurst).
	RESTBurst int
	// SendQueue is how many outgoing frames one socket may have queued
	// (besides the batch its writer is writing) before it is closed as a
	// slow consumer (4008). Zero means 512.
	SendQueue int
	// SendWindow is how many of a connection's sends may be in flight (read
	// and not yet answered) at once: the edge keeps reading a connection's
	// frames while its sends are appended, sends to different conversations
	// run concurrently, and a connection's sends to one conversation are
	// appended in the order they were read (docs/protocol.md, pipelining).
	// The read loop stops reading while the window is full. 1 handles a
	// connection's sends one at a time. Zero means 16.
	SendWindow int
	// PingInterval: the edge pings a connection it has heard nothing from
	// (no frame, no pong) for this long; one that sends nothing for 2x this
	// is closed (4009). Zero means 25s.
	PingInterval time.Duration
	// RequestReadTimeout bounds how long a socket may take to send its whole
	// HTTP request (headers and body; for a WebSocket, the upgrade request),
	// counted from its first byte, and how long a kept-alive socket may wait
	// between requests: a socket still short of it then is closed, so that
	// silent, partial and dripping senders cannot hold the edge's sockets.
	// An upgraded WebSocket is not bound by it (its session's ping logic
	// is). Zero means 10s.
	RequestReadTimeout time.Duration
	// AuthTimeout bounds the wait for the auth frame of a browser client.
	// Zero means 10s (protocol.DefaultAuthTimeout).
	AuthTimeout time.Duration
	// WriteTimeout bounds one socket write: a write blocked for WriteTimeout
	// to 1.5 WriteTimeout is cut (the deadline is moved only when less than
	// WriteTimeout is left). Zero means 10s.
	WriteTimeout time.Duration
	// LameDuck is the interval over which a stopping edge closes its sockets
	// (telling clients to reconnect elsewhere), so that they do not all
	// reconnect at once. Zero means 5s.
	LameDuck time.Duration
	// HistoryLimit is the default page size of history. Zero means 50.
	HistoryLimit int
	// SyncLimit is the default per-conversation page of sync. Zero means 100.
	SyncLimit int
	// EdgeID names this edge in the presence leases (PRESENCE keys
	// on.<user>.<edge>); a subject token. Empty means a random id per
	// process, which is what a restarted edge should get.
	EdgeID string
	// PresenceLease is the TTL of an online lease in the PRESENCE bucket,
	// renewed every third of it; the edge heartbeats every sixth, and
	// other edges take it as gone (and its users offline) after two
	// thirds of it without one. Zero means 30s.
	PresenceLease time.Duration
	// TypingRate and TypingBurst are the token bucket of typing frames
	// per connection and conversation. Zero means 1 per second, burst 3.
	TypingRate  float64
	TypingBurst int
	// TypingMaxMembers: typing in a conversation with more members is
	// refused (forbidden). Zero means 1000.
	TypingMaxMembers int
	// Limits are the deployment-wide limits (per-user message rate and
	// connections, shared between edges) and the per-IP connection limits;
	// each is on by default (see limits.Config for the defaults, negative
	// turns one off). Its RESTRate and RESTBurst are taken from RESTRate
	// and RESTBurst above.
	Limits limits.Config
	// EditWindow is how long after sending a message its sender may edit
	// it (msg.edit). Zero means 48h.
	EditWindow time.Duration
	// DeleteWindow is how long after sending a message its sender may
	// delete (recall) it (msg.delete); a group's admins may delete any
	// message at any time. Zero means 24h.
	DeleteWindow time.Duration
	// Now is the clock the edit and delete windows are checked with. Nil
	// means time.Now (tests set their own).
	Now func() time.Time
	// Auth configures token verification.
	Auth auth.Config
	// Attach configures attachment uploads and downloads.
	Attach AttachConfig
	// App is the web app's files, served at / (index.html) and below,
	// after every other route; with it, a browser page of the edge's own
	// origin (its Origin is the Host the request went to) passes the Origin
	// check besides Origins. Nil means no app: those paths are 404.
	App fs.FS
	// DevTokens, when set, signs the tokens of POST /dev/token ({"user"} ->
	// {"token"}), which gives a token for any user to whoever reaches the
	// edge: only natter dev sets it. Nil means no such route (404).
	DevTokens *auth.Key
	// Logger; nil means discard.
	Logger *slog.Logger
}

// WithDefaults returns c with zero values replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = protocol.DefaultMaxBody
	}
	if c.Rate <= 0 {
		c.Rate = protocol.DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = protocol.DefaultBurst
	}
	if c.RESTRate <= 0 {
		c.RESTRate = protocol.DefaultRate
	}
	if c.RESTBurst <= 0 {
		c.RESTBurst = protocol.DefaultBurst
	}
	c.Limits.RESTRate, c.Limits.RESTBurst = c.RESTRate, c.RESTBurst
	c.Limits = c.Limits.WithDefaults()
	if c.SendQueue <= 0 {
		c.SendQueue = 512
	}
	if c.SendWindow <= 0 {
		c.SendWindow = 16
	}
	if c.PingInterval <= 0 {
		c.PingInterval = protocol.DefaultPingInterval
	}
	if c.RequestReadTimeout <= 0 {
		c.RequestReadTimeout = 10 * time.Second
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = protocol.DefaultAuthTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.LameDuck <= 0 {
		c.LameDuck = 5 * time.Second
	}
	if c.HistoryLimit <= 0 {
		c.HistoryLimit = 50
	}
	if c.SyncLimit <= 0 {
		c.SyncLimit = 100
	}
	if c.EdgeID == "" {
		c.EdgeID = newEdgeID()
	}
	if c.PresenceLease <= 0 {
		c.PresenceLease = 30 * time.Second
	}
	if c.TypingRate <= 0 {
		c.TypingRate = 1
	}
	if c.TypingBurst <= 0 {
		c.TypingBurst = 3
	}
	if c.TypingMaxMembers <= 0 {
		c.TypingMaxMembers = 1000
	}
	if c.EditWindow <= 0 {
		c.EditWindow = 48 * time.Hour
	}
	if c.DeleteWindow <= 0 {
		c.DeleteWindow = 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Attach = c.Attach.withDefaults()
	return c
}
