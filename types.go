package natter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Message is one accepted message. The same JSON is the payload of its log
// entry in the MSGS stream, the body of a delivery on im.dlv.<user>, the
// "msg" of a push frame and the MongoDB document (with ID as _id).
type Message struct {
	// ID is derived from (Conv, From, Cmid): retries of one send get one ID.
	ID string `json:"id" bson:"_id"`
	// Conv is the conversation id.
	Conv string `json:"conv" bson:"conv"`
	// Seq is the per-conversation sequence: 1, 2, 3 ... gap-free.
	Seq uint64 `json:"seq" bson:"seq"`
	// From is the sending user (from the token, never from the client).
	From string `json:"from" bson:"from"`
	// Cmid is the client message id the sender chose.
	Cmid string `json:"cmid" bson:"cmid"`
	// Type is an application-defined kind ("text" when empty on send).
	Type string `json:"type,omitempty" bson:"type,omitempty"`
	// Body is the message text (UTF-8, at most the configured body limit).
	// An edit entry carries the new text; a delete entry has none.
	Body string `json:"body" bson:"body"`
	// Ref is the id of the message an edit or delete entry applies to
	// (Type [TypeEdit] or [TypeDelete]); empty for every other entry.
	Ref string `json:"ref,omitempty" bson:"ref,omitempty"`
	// ReplyTo is the id of the message (of the same conversation) this one
	// replies to; empty when it replies to none.
	ReplyTo string `json:"reply_to,omitempty" bson:"reply_to,omitempty"`
	// Thread is the id of the root message of the thread this message is a
	// reply in; empty for a message outside threads (and for a root).
	Thread string `json:"thread,omitempty" bson:"thread,omitempty"`
	// Mentions are the user ids (members of Conv when sent) the message
	// mentions, or [MentionAll] for every member; empty for most messages.
	Mentions []string `json:"mentions,omitempty" bson:"mentions,omitempty"`
	// Attachments are the files the message carries, each uploaded by the
	// sender beforehand (POST /v1/attachments); the edge fills in their
	// metadata from the upload. Empty for most messages.
	Attachments []Attachment `json:"attachments,omitempty" bson:"attachments,omitempty"`
	// TS is the server time of acceptance, Unix milliseconds.
	TS int64 `json:"ts" bson:"ts"`

	// The fields below are never stored in the log or the archive: the
	// readers of history and sync fill them in from the message's actions
	// (jetstream/actions), so a page shows each message as it is now.

	// EditedAt is the TS of the latest edit applied to Body (which is then
	// that edit's text); 0 (absent) when the message was not edited.
	EditedAt int64 `json:"edited_at,omitempty" bson:"-"`
	// Deleted is true when the message was deleted (recalled by its sender
	// or removed by a group admin): Body is then empty. On an edit entry it
	// means the message it edits was deleted (its text is gone too).
	Deleted bool `json:"deleted,omitempty" bson:"-"`
	// Reactions are the message's reactions (emoji and count, in the order
	// they were first added), Mine set on those of the user who asked; nil
	// (absent) when none, and on a deleted message. A pointer, so that a
	// Message stays comparable with ==.
	Reactions *Reactions `json:"reactions,omitempty" bson:"-"`
	// ThreadReplies is the number of replies in the thread this message is
	// the root of, ThreadLastAt the TS of the newest; 0 (absent) when it is
	// the root of none.
	ThreadReplies int   `json:"thread_replies,omitempty" bson:"-"`
	ThreadLastAt  int64 `json:"thread_last_at,omitempty" bson:"-"`
}

// Reactions are a message's reactions, as pages return them.
type Reactions []Reaction

// Reaction is one emoji's count on a message, as pages return it.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	// Mine is true when the user who asked for the page reacted with it.
	Mine bool `json:"mine,omitempty"`
}

// Attachment is a file a message references: what the upload recorded.
type Attachment struct {
	// ID is the attachment id the upload returned.
	ID string `json:"id" bson:"id"`
	// Name is the file name the uploader gave (or the sender's name for it).
	Name string `json:"name,omitempty" bson:"name,omitempty"`
	// Size in bytes.
	Size int64 `json:"size" bson:"size"`
	// Type is the content type (an allowed type, checked against the bytes).
	Type string `json:"type" bson:"type"`
	// Width and Height of an image, in pixels; 0 when unknown or not an image.
	Width  int `json:"width,omitempty" bson:"width,omitempty"`
	Height int `json:"height,omitempty" bson:"height,omitempty"`
}

// Message types with a meaning to natter. Edits and deletes are entries of
// the conversation log like any message (the log is append-only): an entry
// with Type TypeEdit and a Ref replaces the body of the message Ref names,
// one with TypeDelete and a Ref removes it. Clients apply them in seq order.
const (
	TypeText   = "text"
	TypeEdit   = "edit"
	TypeDelete = "delete"
)

// IsEdit reports whether m is an edit entry (Type [TypeEdit] with a Ref).
func (m Message) IsEdit() bool { return m.Type == TypeEdit && m.Ref != "" }

// IsDelete reports whether m is a delete entry (Type [TypeDelete] with a Ref).
func (m Message) IsDelete() bool { return m.Type == TypeDelete && m.Ref != "" }

// Ack is what a sender gets back once its message is durable in the log.
type Ack struct {
	ID   string `json:"id"`
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
	// Dup is true when the send was a retry of an already accepted message.
	Dup bool `json:"dup,omitempty"`
}

// Mentions of a message ([Message.Mentions]).
const (
	// MentionAll in Mentions mentions every member of a group; only its
	// owner and admins may send it.
	MentionAll = "@all"
	// MaxMentions is the most entries of Mentions.
	MaxMentions = 50
)

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// Conversation is a direct (one per pair of users) or group conversation.
type Conversation struct {
	ID        string   `json:"id" bson:"_id"`
	Kind      string   `json:"kind" bson:"kind"`
	Name      string   `json:"name,omitempty" bson:"name,omitempty"`
	CreatedBy string   `json:"created_by" bson:"created_by"`
	CreatedAt int64    `json:"created_at" bson:"created_at"`
	Members   []string `json:"members,omitempty" bson:"members"`
	// MemberCount is the number of members, filled in by readers; not
	// stored.
	MemberCount int `json:"member_count,omitempty" bson:"-"`
	// Rev is the conversation's state version: 0 when created, one more
	// with every member change and rename of a group (a direct
	// conversation stays at 0). Its events carry it (the conv pushes of
	// docs/protocol.md; the ids of docs/events.md), and readers fill it in
	// from the group's member head, so a client tells a newer state from an
	// older one. The bson field is only read from documents written before
	// the member heads (the migration continues from it).
	Rev int64 `json:"rev,omitempty" bson:"rev,omitempty"`
	// Head is the newest seq, filled in by readers of the log; not stored.
	Head uint64 `json:"head" bson:"-"`
	// Read is the user's read cursor and Unread is Head - Read (0 when
	// Read >= Head), filled in for the user who asked (conv.list); not
	// stored, absent when 0.
	Read   uint64 `json:"read,omitempty" bson:"-"`
	Unread uint64 `json:"unread,omitempty" bson:"-"`
	// Mentions is how many messages after the read cursor mention the
	// user or @all (at most 100: the newest 100 mentions are kept).
	Mentions uint64 `json:"mentions,omitempty" bson:"-"`

	// A group's roles and profile (docs/protocol.md, "Group roles"),
	// filled in by readers from the head of its member list; not stored
	// in the conversation document, absent for a direct conversation.
	// Owner is the creator until ownership is transferred.
	Owner       string   `json:"owner,omitempty" bson:"-"`
	Admins      []string `json:"admins,omitempty" bson:"-"`
	Description string   `json:"description,omitempty" bson:"-"`
	AvatarURL   string   `json:"avatar_url,omitempty" bson:"-"`
	// Announce: announcement mode, only the owner and admins send.
	Announce bool `json:"announce,omitempty" bson:"-"`
	// Muted are the members muted now, with when each mute ends.
	Muted []Mute `json:"muted,omitempty" bson:"-"`
	// Settings are the asking user's settings of the conversation
	// (conv.list), absent when none is set.
	Settings *ConvSettings `json:"settings,omitempty" bson:"-"`
}

// ConvSettings are one user's settings of one conversation, the same on
// every device of the user (docs/protocol.md, "conv.settings").
type ConvSettings struct {
	// MutedUntil: no notifications until this time (Unix ms); 0: not muted.
	MutedUntil int64 `json:"muted_until,omitempty"`
	Pinned     bool  `json:"pinned,omitempty"`
	Archived   bool  `json:"archived,omitempty"`
	// Cleared hides every message up to this seq from the user (history
	// and sync leave them out); 0: none.
	Cleared uint64 `json:"cleared,omitempty"`
}

// IsZero reports whether s is the default (nothing set).
func (s ConvSettings) IsZero() bool { return s == ConvSettings{} }

// Mute is one muted member of a group: User sends nothing until Until
// (Unix ms).
type Mute struct {
	User  string `json:"user" bson:"user"`
	Until int64  `json:"until" bson:"until"`
}

// DirectID is the deterministic id of the direct conversation between users
// a and b (in either order): "d_" + 32 hex digits of sha256.
func DirectID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\n" + b))
	return "d_" + hex.EncodeToString(sum[:16])
}

// IsGroupID reports whether id is a group's: the conversations service
// gives groups ids that start with "g_" (direct ones start with "d_").
func IsGroupID(id string) bool { return strings.HasPrefix(id, "g_") }

// Event kinds: the <kind> token of an event subject (im.evt.<kind>.<conv>).
const (
	EventMessageCreated      = "message_created"
	EventMessageEdited       = "message_edited"
	EventMessageDeleted      = "message_deleted"
	EventMemberJoined        = "member_joined"
	EventMemberLeft          = "member_left"
	EventConversationCreated = "conversation_created"
	EventConversationRenamed = "conversation_renamed"
	EventReadMoved           = "read_moved"
	EventReactionAdded       = "reaction_added"
	EventReactionRemoved     = "reaction_removed"
	// EventConversationUpdated: a group's roles, mutes, announcement mode,
	// description or avatar URL changed.
	EventConversationUpdated = "conversation_updated"
	// EventMessagesExpired: the retention role removed a conversation's
	// messages older than its retention policy allows.
	EventMessagesExpired = "messages_expired"
)

// EventKinds lists every event kind.
var EventKinds = []string{
	EventMessageCreated, EventMessageEdited, EventMessageDeleted,
	EventMemberJoined, EventMemberLeft, EventConversationCreated, EventConversationRenamed, EventReadMoved,
	EventReactionAdded, EventReactionRemoved,
	EventConversationUpdated, EventMessagesExpired,
}

// Event is one state change on the EVENTS stream, published once on
// im.evt.<kind>.<conv> with Nats-Msg-Id = ID. The JSON is the envelope of
// docs/events.md and docs/asyncapi.yaml:
//
//	{"id":"...","kind":"...","conv":"...","ts":<ms>,"actor":"...","data":{...}}
type Event struct {
	// ID is derived from the change (see docs/events.md), so a publish that
	// is retried or redelivered carries the same id and is stored once.
	ID string `json:"id"`
	// Kind is one of the Event* kinds.
	Kind string `json:"kind"`
	// Conv is the conversation the change is in.
	Conv string `json:"conv"`
	// TS is when the change happened, Unix milliseconds (for message_*
	// the message's TS).
	TS int64 `json:"ts"`
	// Actor is the user or service identity that made the change.
	Actor string `json:"actor"`
	// Data depends on Kind: the [Message] (log entry) for message_*,
	// [EventUsers] for member_*, the [Conversation] for
	// conversation_created, [EventName] for conversation_renamed,
	// [EventRead] for read_moved, [EventUpdate] for conversation_updated,
	// [EventReaction] for reaction_*, [EventExpired] for messages_expired.
	Data json.RawMessage `json:"data"`
}

// EventUsers is the data of member_joined and member_left.
type EventUsers struct {
	Users []string `json:"users"`
}

// EventName is the data of conversation_renamed: the group's new name.
type EventName struct {
	Name string `json:"name"`
}

// EventReaction is the data of reaction_added and reaction_removed: User
// added (or removed) Emoji on the message Ref (seq Seq), which now has
// Count reactions with it.
type EventReaction struct {
	Ref   string `json:"ref"`
	Seq   uint64 `json:"seq"`
	User  string `json:"user"`
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
}

// EventExpired is the data of messages_expired: the messages of the
// conversation with seqs From..To were removed from the archive and the
// hot tier (Count of them, those not removed by an earlier sweep), because
// of Reason ("days" or "messages"); Floor (To+1) is the oldest seq kept.
// Attached are the ids of the removed messages that carried attachments
// (the attachgc role deletes those no other message carries).
type EventExpired struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	Count    uint64   `json:"count"`
	Floor    uint64   `json:"floor"`
	Reason   string   `json:"reason"`
	Attached []string `json:"attached,omitempty"`
}

// EventRead is the data of read_moved: User has read Conv up to Seq.
type EventRead struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// Changes of a conversation_updated event ([EventUpdate.Change]).
const (
	UpdateRoles   = "roles"   // owner or admins
	UpdateMuted   = "muted"   // members muted or unmuted
	UpdateProfile = "profile" // description, avatar URL or announcement mode
)

// EventUpdate is the data of conversation_updated: which Change, and the
// group's state after it. roles: Owner and Admins. muted: Users muted
// until Until (Unix ms; 0 = unmuted). profile: Description, AvatarURL and
// Announce.
type EventUpdate struct {
	Change      string   `json:"change"`
	Owner       string   `json:"owner,omitempty"`
	Admins      []string `json:"admins,omitempty"`
	Users       []string `json:"users,omitempty"`
	Until       int64    `json:"until,omitempty"`
	Description string   `json:"description,omitempty"`
	AvatarURL   string   `json:"avatar_url,omitempty"`
	Announce    bool     `json:"announce,omitempty"`
}
