package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter"
)

// Config configures a [Client]. Zero values take the documented defaults;
// URLs and one of Token and TokenFunc are required.
type Config struct {
	// URLs are the WebSocket endpoints of one or more edges
	// ("ws://host:port/v1/ws"). Dial tries them in order; reconnects rotate
	// through them. Required.
	URLs []string
	// Token is the JWT sent as "Authorization: Bearer <token>" on every
	// connect. Ignored when TokenFunc is set.
	Token string
	// TokenFunc, when set, is called for a token before every connect and
	// reconnect. If it fails, the client stops and [Client.Err] says why.
	TokenFunc func(ctx context.Context) (string, error)
	// Device is the device id sent as X-Natter-Device. Delivered cursors
	// (acks) are kept per user and device. Empty means the token's device
	// claim, else the server default ("default").
	Device string

	// Cursors are the initial per-conversation cursors: the last seq of each
	// conversation the application already has. Delivery resumes after them.
	// Nil means none; see FromStart.
	Cursors map[string]uint64
	// FromStart makes conversations that are not in Cursors at the first
	// sync start at seq 0 (their whole history is delivered) instead of at
	// their head (only what arrives from now on is delivered; the
	// application loads older pages with [Client.History]). Conversations
	// that appear after the first sync always start at 0. Set it when
	// Cursors are the ones a previous run persisted: then a conversation
	// created while the application was not running is delivered whole.
	FromStart bool
	// SyncLimit is the number of messages per conversation one sync round
	// fetches. Zero means 100 (the protocol default); at most 1000.
	SyncLimit int

	// AutoAck is the interval at which the client reports its delivered
	// cursors to the server (ack frames), per conversation and only when the
	// cursor moved. Zero means 1s; negative disables acks.
	AutoAck time.Duration
	// Backoff and MaxBackoff bound the reconnect and retry delays
	// (exponential with full jitter). Zero means 100ms and 5s.
	Backoff, MaxBackoff time.Duration
	// RequestTimeout bounds the wait for one reply. Calls other than Send
	// give up after it in total (waiting for a connection and retries
	// included); Send re-sends after it and runs until its context ends.
	// It also bounds the WebSocket handshake and the wait for hello. Zero
	// means 10s.
	RequestTimeout time.Duration

	// Buffer is the capacity of the [Client.Messages] channel. Zero means
	// 64. Messages the application has not taken yet beyond it wait in the
	// client's queue (MaxPending), so a larger channel buys no slack; it
	// costs memory (a natter.Message is 248 bytes a slot) and cache misses
	// in a process holding many clients.
	Buffer int
	// EventBuffer is the capacity of each of the [Client.PresenceEvents],
	// [Client.TypingEvents] and [Client.ReadEvents] channels; events that
	// find it full are dropped. Zero means 256.
	EventBuffer int
	// MaxPending is how many messages the client queues internally when the
	// application does not drain [Client.Messages] fast enough. Past it the
	// client stops reading its socket until the queue drains: replies wait
	// too, and the edge eventually closes the socket as a slow consumer
	// (4008), after which the client reconnects and syncs. Zero means
	// 65536.
	MaxPending int

	// Logger receives connection events. Nil means discard.
	Logger *slog.Logger
	// Dialer dials the WebSockets (set NetDialContext for local source
	// addresses or test hooks). Its Subprotocols are replaced by natter.v1;
	// its WriteBufferSize is not used (the client frames its messages
	// itself). Nil means a default dialer.
	Dialer *websocket.Dialer
}

const (
	defaultAutoAck        = time.Second
	defaultBackoff        = 100 * time.Millisecond
	defaultMaxBackoff     = 5 * time.Second
	defaultRequestTimeout = 10 * time.Second
	defaultBuffer         = 64
	defaultMaxPending     = 65536
	defaultEventBuffer    = 256
	// maxConvBuffer bounds the out-of-order pushes kept per conversation;
	// later ones are dropped and fetched by sync instead.
	maxConvBuffer = 4096
	// maxAcksPerTick bounds the ack frames sent per AutoAck interval, so
	// that acks never eat the connection's rate limit.
	maxAcksPerTick = 32
)

func (c Config) withDefaults() Config {
	if c.AutoAck == 0 {
		c.AutoAck = defaultAutoAck
	}
	if c.Backoff <= 0 {
		c.Backoff = defaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Buffer <= 0 {
		c.Buffer = defaultBuffer
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = defaultEventBuffer
	}
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SendOption sets an optional field of [Client.Send].
type SendOption func(*sendOptions)

type sendOptions struct {
	cmid        string
	typ         string
	attachments []natter.Attachment
	replyTo     string
	mentions    []string
	thread      string
}

// WithCmid sets the client message id, the idempotency key of the send:
// 1..64 characters of [A-Za-z0-9_-]. Persist it with the pending message
// and pass the same one when sending again after a restart: the message is
// stored once. Without it Send makes a random one. Send cannot tell whether
// a cmid of yours was sent before, so it never marks such a send as a first
// attempt: the edge always checks it against the stored messages.
func WithCmid(cmid string) SendOption { return func(o *sendOptions) { o.cmid = cmid } }

// WithType sets the application-defined message type (at most 32 bytes).
// Without it the message is "text".
func WithType(typ string) SendOption { return func(o *sendOptions) { o.typ = typ } }

// WithAttachments makes the message carry files uploaded before with
// [Client.Upload] (at most 10, each uploaded by this user); the edge fills
// in their metadata. With attachments the body may be empty.
func WithAttachments(as ...natter.Attachment) SendOption {
	return func(o *sendOptions) { o.attachments = append(o.attachments, as...) }
}

// WithMentions mentions users (members of the conversation) in the
// message, or natter.MentionAll (for a group's owner and admins): at most
// natter.MaxMentions, none twice.
func WithMentions(users ...string) SendOption {
	return func(o *sendOptions) { o.mentions = append([]string(nil), users...) }
}

// WithReplyTo makes the message a reply to the message with id (of the
// same conversation); the edge refuses an unknown id with not_found.
func WithReplyTo(id string) SendOption { return func(o *sendOptions) { o.replyTo = id } }

// WithThread makes the message a reply in the thread whose root is the
// message with id (of the same conversation, not itself a thread reply);
// [Client.Thread] reads the thread.
func WithThread(root string) SendOption { return func(o *sendOptions) { o.thread = root } }

// NewCmid returns a random client message id (22 characters of
// [A-Za-z0-9_-]), what Send uses when no [WithCmid] is given.
func NewCmid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
