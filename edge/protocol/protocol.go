package protocol

import "time"

// Version is the protocol version this package speaks.
const Version = 1

// Connection constants.
const (
	// Path is the WebSocket endpoint.
	Path = "/v1/ws"
	// Subprotocol is the WebSocket subprotocol of version 1. A client that
	// offers subprotocols must offer this one; one that offers none gets v1.
	Subprotocol = "natter.v1"
	// HeaderDevice optionally names the device at upgrade.
	HeaderDevice = "X-Natter-Device"
	// DefaultDevice is the device id an edge uses when a client names none.
	DefaultDevice = "default"
)

// Protocol-level defaults. The edge's configuration starts from these and
// announces the values in effect in the hello frame (ping_ms, max_body).
const (
	// DefaultMaxBody is the largest message body in bytes (64 KiB).
	DefaultMaxBody = 64 << 10
	// FrameOverhead is what a frame may carry beyond max_body (envelope,
	// escapes, cursors): a frame longer than max_body+FrameOverhead is
	// closed with [CloseTooBig] before it is parsed.
	FrameOverhead = 4 << 10
	// DefaultPingInterval is how often the edge sends WebSocket pings; a
	// connection silent for twice this long is closed with [CloseIdleTimeout].
	DefaultPingInterval = 25 * time.Second
	// DefaultAuthTimeout is how long an edge waits for the auth frame of a
	// connection that had no Authorization header.
	DefaultAuthTimeout = 10 * time.Second
	// DefaultRate and DefaultBurst are the per-connection token bucket:
	// frames per second, and the bucket size.
	DefaultRate  = 20
	DefaultBurst = 100
	// DefaultMaxBadFrames is how many undecodable frames in a row (bad_json,
	// bad_frame, unknown_op) close a connection with [CloseBadProtocol].
	DefaultMaxBadFrames = 10
)

// Field limits checked by [Decode] and [Request.Validate].
const (
	// MaxRequestID is the longest request id (printable ASCII, no space).
	MaxRequestID = 64
	// MaxType is the longest message type.
	MaxType = 32
	// MaxName is the longest group name, in characters.
	MaxName = 128
	// MaxConvEventUsers is the most users a members_added or
	// members_removed push names; a change of more users carries only
	// their number (n).
	MaxConvEventUsers = 100
	// MaxUsers is the most users in one members.add, members.remove or
	// conv.create (members).
	MaxUsers = 1000
	// DefaultSyncLimit and MaxSyncLimit bound the messages per conversation
	// of one sync reply.
	DefaultSyncLimit = 100
	MaxSyncLimit     = 1000
	// DefaultHistoryLimit and MaxHistoryLimit bound one history page.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
	// MaxPageSize is the largest page_size of sync and conv.list: a page's
	// read and delivered cursors are read in one batched request, which the
	// server answers for at most 1,024 keys.
	MaxPageSize = 500
	// MaxPresenceUsers is the most users one connection may watch the
	// presence of (presence.sub), and so the most in one request.
	MaxPresenceUsers = 500
	// TypingExpiresMS is how long a client shows a typing "started" after
	// the push (the expires_ms of the typing frame): a typer renews it
	// before then, and a client that hears nothing more drops it.
	TypingExpiresMS = 6000
	// DefaultReceiptsLimit and MaxReceiptsLimit bound one receipts page.
	DefaultReceiptsLimit = 100
	MaxReceiptsLimit     = 200
	// DefaultThreadLimit and MaxThreadLimit bound one thread page.
	DefaultThreadLimit = 50
	MaxThreadLimit     = 100
	// MaxAttachments is the most attachments one message carries.
	MaxAttachments = 10
	// MaxAttachmentName is the longest attachment file name, in bytes.
	MaxAttachmentName = 255
	// MaxReceiptMembers is the largest group whose members get each
	// other's read pushes (direct conversations always do); in a larger
	// group only the reader's own devices get them.
	MaxReceiptMembers = 100
	// MaxEmoji is the longest reaction (an emoji, or a short code), in
	// bytes of UTF-8.
	MaxEmoji = 32
	// MaxDescription is the longest group description, in characters.
	MaxDescription = 500
	// MaxAvatarURL is the longest avatar URL, in bytes.
	MaxAvatarURL = 1024
	// MaxMuteMS is the longest mute (members.mute duration_ms): 366 days.
	MaxMuteMS = 366 * 24 * 3600 * 1000
)

// Client ops (the "op" of a request).
const (
	OpAuth          = "auth"
	OpSend          = "send"
	OpAck           = "ack"
	OpSync          = "sync"
	OpHistory       = "history"
	OpConvCreate    = "conv.create"
	OpConvList      = "conv.list"
	OpConvGet       = "conv.get"
	OpConvRename    = "conv.rename"
	OpMembersAdd    = "members.add"
	OpMembersRemove = "members.remove"
	OpMembersList   = "members.list"
	OpRead          = "read"
	OpPing          = "ping"
	OpPresenceSub   = "presence.sub"
	OpPresenceUnsub = "presence.unsub"
	OpPresenceSet   = "presence.set"
	OpTyping        = "typing"
	OpReceipts      = "receipts"
	// OpMsgEdit and OpMsgDelete edit or delete (recall) a message of a
	// conversation: appended as an entry with type edit or delete and ref.
	OpMsgEdit   = "msg.edit"
	OpMsgDelete = "msg.delete"
	// OpReact adds (or, with remove, takes back) the user's reaction to a
	// message.
	OpReact = "react"
	// OpThread reads a page of the replies in a thread (root: the thread's
	// root message id), oldest first.
	OpThread = "thread"
	// Group roles and moderation (docs/protocol.md, "Group roles").
	OpConvUpdate    = "conv.update"
	OpAdminsAdd     = "admins.add"
	OpAdminsRemove  = "admins.remove"
	OpOwnerTransfer = "owner.transfer"
	OpMembersMute   = "members.mute"
	OpMembersUnmute = "members.unmute"
	// Blocking (docs/protocol.md, "block, unblock, blocks.list").
	OpBlock      = "block"
	OpUnblock    = "unblock"
	OpBlocksList = "blocks.list"
	// OpConvSettings sets the user's own settings of a conversation
	// (docs/protocol.md, "conv.settings").
	OpConvSettings = "conv.settings"
	// OpPushRegister stores the device's push registration (replacing
	// its previous one); OpPushUnregister removes it.
	OpPushRegister   = "push.register"
	OpPushUnregister = "push.unregister"
)

// Push providers ([Request.Provider]).
const (
	PushAPNs    = "apns"
	PushFCM     = "fcm"
	PushWebPush = "webpush"
)

// States of a typing request and push ([Request.State], [TypingFrame.State]).
const (
	TypingStarted = "started"
	TypingStopped = "stopped"
)

// Server frame types (the "t" of a server frame). Clients ignore frames with
// a type they do not know, so new pushes can be added within v1.
const (
	FrameRes   = "res"
	FrameErr   = "err"
	FrameMsg   = "msg"
	FrameHello = "hello"
	FrameBye   = "bye"
	FrameConv  = "conv"
	// FramePresence: a watched user went online or offline.
	FramePresence = "presence"
	// FrameTyping: a member of a conversation started or stopped typing.
	FrameTyping = "typing"
	// FrameRead: a member of a conversation (the user too, on another
	// device) read it up to a seq.
	FrameRead = "read"
	// FrameReaction: a member added or removed a reaction to a message.
	FrameReaction = "reaction"
)

// Events of a conv push ([ConvFrame.Event]). Clients ignore values they do
// not know.
const (
	// ConvAdded: the user is now a member of the conversation (a new
	// conversation, Created set, or a group the user was added to).
	ConvAdded = "added"
	// ConvRemoved: the user is no longer a member (removed from a group,
	// or left it).
	ConvRemoved = "removed"
	// ConvMembersAdded: users were added to a group the user is in.
	ConvMembersAdded = "members_added"
	// ConvMembersRemoved: users left or were removed from a group the user
	// is in.
	ConvMembersRemoved = "members_removed"
	// ConvRenamed: a group the user is in was renamed.
	ConvRenamed = "renamed"
	// ConvRoles: a group's owner or admins changed (owner, admins).
	ConvRoles = "roles"
	// ConvMuted: members of a group were muted until a time, or unmuted
	// (users, until).
	ConvMuted = "muted"
	// ConvUpdated: a group's description, avatar URL or announcement mode
	// changed (description, avatar_url, announce: the state after).
	ConvUpdated = "updated"
	// ConvSettings: the user changed their own settings of the
	// conversation on one of their devices (settings: the settings after).
	ConvSettings = "settings"
)

// WebSocket close codes.
const (
	// CloseNormal: the connection is done (client or server asked).
	CloseNormal = 1000
	// ClosePolicy: Origin not allowed, or the first frame was not auth.
	ClosePolicy = 1008
	// CloseTooBig: a frame exceeded max_body+FrameOverhead.
	CloseTooBig = 1009
	// CloseInternal: the server failed.
	CloseInternal = 1011
	// CloseBadProtocol: too many bad frames in a row.
	CloseBadProtocol = 4000
	// CloseUnauthorized: the token is invalid or expired.
	CloseUnauthorized = 4001
	// CloseAuthTimeout: no auth frame within the auth timeout.
	CloseAuthTimeout = 4002
	// CloseTokenRevoked: the session's token was revoked.
	CloseTokenRevoked = 4003
	// CloseBanned: the session's user is banned.
	CloseBanned = 4004
	// CloseDisconnected: an operator closed the session (admin API).
	CloseDisconnected = 4005
	// CloseSlowConsumer: the connection's send queue was full.
	CloseSlowConsumer = 4008
	// CloseIdleTimeout: nothing was heard for two ping intervals.
	CloseIdleTimeout = 4009
	// CloseGoingAway: the edge is shutting down; reconnect (elsewhere).
	CloseGoingAway = 4010
	// CloseTooManyConnections: the user has the most connections allowed
	// over all edges already (a client that authenticates with its first
	// frame learns it here; with an Authorization header it is HTTP 429).
	CloseTooManyConnections = 4029
)
