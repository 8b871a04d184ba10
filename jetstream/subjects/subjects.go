package subjects

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidID is returned by [ValidID] for an id that cannot be a subject token.
var ErrInvalidID = errors.New("subjects: invalid id")

// MaxIDLen is the longest user, conversation or device id natter accepts.
const MaxIDLen = 64

// Streams.
const (
	// StreamMsgs is the ordered log of accepted messages (subjects MsgsAll).
	StreamMsgs = "MSGS"
	// StreamDLQ keeps poison messages a worker gave up on (subjects DLQAll).
	StreamDLQ = "DLQ"
	// StreamIngest is the work queue of fire-and-forget sends from services
	// (subjects IngestAll).
	StreamIngest = "INGEST"
	// StreamEvents is the event stream for consumers (subjects EventsAll).
	StreamEvents = "EVENTS"
	// StreamAttach is the work queue of attachment jobs (subjects
	// AttachAll): a thumbnail to make after an upload (AttachThumb).
	StreamAttach = "ATTACH"
)

// Durable consumers, one per worker role; replicas of a role share it.
const (
	ConsumerPersist = "PERSIST"
	ConsumerFanout  = "FANOUT"
	// ConsumerEvents is the consumer on MSGS of the events role, which
	// copies the log into EVENTS as v1 message events; not a default role,
	// so the role creates it when it starts (streams.EventsCopyConsumer).
	ConsumerEvents = "EVENTS"
	// ConsumerIngest is the ingest role's consumer on INGEST.
	ConsumerIngest = "INGEST"
	// ConsumerPush is the push role's consumer on MSGS.
	ConsumerPush = "PUSH"
	// ConsumerThumbs is the thumbs role's consumer on ATTACH (AttachThumbs).
	ConsumerThumbs = "THUMBS"
	// ConsumerAttachGC was the attachgc role's consumer (on EVENTS, the
	// message_deleted events): natter no longer creates or reads it (the
	// persist role drops a deleted message's attachments); an existing one
	// can be removed (docs/events.md, "Message events").
	ConsumerAttachGC = "ATTACHGC"
)

// KV buckets.
const (
	// BucketIdem held the idempotency records of sends, one key per
	// message, before the retry check read the log and the archive instead.
	// natter no longer creates or writes it; an existing one can be deleted
	// (docs/operations.md).
	BucketIdem = "IDEM"
	// BucketCursors holds per-device delivered cursors (DeliveredKey) and
	// per-user read cursors (ReadKey).
	BucketCursors = "CURSORS"
	// BucketSummaries holds a copy of each conversation's summary as
	// conv.list shows it, key = conversation id (jetstream/summaries).
	BucketSummaries = "SUMMARIES"
	// BucketPresence holds presence state: an online lease per user and
	// edge (PresenceOnKey, per-key TTL), each user's last_seen
	// (PresenceSeenKey) and hidden setting (PresenceHiddenKey), and the
	// users each user blocks (PresenceBlockKey).
	BucketPresence = "PRESENCE"
	// BucketSettings holds each user's settings of each of their
	// conversations (SettingsKey; jetstream/settings).
	BucketSettings = "SETTINGS"
	// BucketRevoked holds token revocations and user bans (RevokedJTIKey,
	// RevokedUserKey, RevokedDeviceKey, BanKey), each with a per-key TTL
	// that ends when the tokens it covers would have expired (bans: at
	// their expiry, or never), and frozen conversations (FrozenKey, no
	// TTL). Every edge watches it.
	BucketRevoked = "REVOKED"
	// BucketActions holds what clients' and services' actions made of
	// each message (its latest edit, its deletion), one key per message:
	// ActionsKey (jetstream/actions). Readers of history and sync apply it
	// to their pages with one batched read per page.
	BucketActions = "ACTIONS"
	// BucketPush holds the devices' push registrations (PushKey): the
	// provider and its token or Web Push subscription, JSON
	// (jetstream/pushreg).
	BucketPush = "PUSH"
	// BucketAttach holds attachment metadata: one key per upload
	// (AttachMetaKey), the attachments of each message that carries some
	// (AttachMsgKey) and each user's stored bytes (AttachQuotaKey).
	BucketAttach = "ATTACHMENTS"
	// ObjectAttach is the JetStream object store of attachment bytes (the
	// default storage): objects AttachObject and AttachThumbObject.
	ObjectAttach = "ATTACHBLOBS"
)

// Subject trees.
const (
	// MsgsAll matches every conversation's log subject.
	MsgsAll = "im.msg.>"
	// DLQAll matches every dead-letter subject.
	DLQAll = "im.dlq.>"
	// DeliverAll matches every per-user delivery subject (not
	// DeliverGroups, which has one token more).
	DeliverAll = "im.dlv.*"
	// DeliverGroups is the broadcast delivery subject every edge listens
	// on: a group's batch with its member list (package delivery), once for
	// all edges instead of once per member. It sits under im.dlv.> (the
	// edge and worker tiers' permission) but has four tokens, so no user
	// id (one token, no dots) can name it.
	DeliverGroups = "im.dlv.grp.all"
	// MembersChangedAll matches every membership-change notice.
	MembersChangedAll = "im.members.*"
	// IngestAll matches every conversation's ingest subject.
	IngestAll = "im.ingest.*"
	// EventsAll matches every event subject (im.evt.<kind>.<conv>).
	EventsAll = "im.evt.>"
	// PresenceAll matches every user's presence subject (im.presence.<user>),
	// not PresenceHeartbeat, which has one token more.
	PresenceAll = "im.presence.*"
	// PresenceHeartbeat is where every edge publishes its liveness (its
	// edge id) every few seconds; every edge listens, and takes the users
	// of an edge it no longer hears from offline. Four tokens, so no user
	// id can name it.
	PresenceHeartbeat = "im.presence.hb.edges"
	// StatusAll matches every status endpoint (natter.status.<role>).
	StatusAll = "natter.status.*"
)

// Micro service names and endpoint subjects.
const (
	// ServiceConversations is the micro service for conversations, members,
	// cursors and archived history.
	ServiceConversations = "natter-conversations"
	// ConvAPIPrefix prefixes every conversations endpoint ("natter.conv.create").
	ConvAPIPrefix = "natter.conv"
	// QueueConversations is the queue group all replicas of the service share.
	QueueConversations = "natter-conversations"

	// ServiceAPI is the micro service for internal services: send, create
	// conversations, change members, history, edit and delete.
	ServiceAPI = "natter-api"
	// APIPrefix prefixes every service API endpoint ("natter.api.send").
	APIPrefix = "natter.api"
	// QueueAPI is the queue group all replicas of the API share.
	QueueAPI = "natter-api"

	// ServiceEdge is the discovery name of an edge process.
	ServiceEdge = "natter-edge"
	// ServicePrefix starts the micro service name of every natter process
	// and role (ServiceName).
	ServicePrefix = "natter-"
	// QueueStatus is the queue group of the status endpoints.
	QueueStatus = "natter-status"
)

// Attachment subjects.
const (
	// AttachAll matches every attachment job subject.
	AttachAll = "im.att.>"
	// AttachThumbs matches every thumbnail job (AttachThumb).
	AttachThumbs = "im.att.thumb.*"
)

// AttachThumb is the job subject of a thumbnail of one attachment:
// im.att.thumb.<id>.
func AttachThumb(id string) string { return "im.att.thumb." + id }

// AttachFromThumb returns the attachment id of a thumbnail job subject, or
// "" if subj is not one.
func AttachFromThumb(subj string) string {
	const p = "im.att.thumb."
	if len(subj) <= len(p) || subj[:len(p)] != p || strings.IndexByte(subj[len(p):], '.') >= 0 {
		return ""
	}
	return subj[len(p):]
}

// AttachMetaKey is the ATTACHMENTS key of one attachment's metadata: a.<id>.
func AttachMetaKey(id string) string { return "a." + id }

// AttachMetaKeys matches every attachment's metadata key: a.*.
func AttachMetaKeys() string { return "a.*" }

// AttachMsgKey is the ATTACHMENTS key listing the attachments of message
// msgID: m.<msgID>.
func AttachMsgKey(msgID string) string { return "m." + msgID }

// AttachQuotaKey is the ATTACHMENTS key of user's stored bytes: q.<user>.
func AttachQuotaKey(user string) string { return "q." + user }

// AttachObject is the object name of an attachment's bytes: the id.
func AttachObject(id string) string { return id }

// AttachThumbObject is the object name of an attachment's thumbnail:
// <id>.thumb.
func AttachThumbObject(id string) string { return id + ".thumb" }

// Msg is the log subject of one conversation: im.msg.<conv>.
func Msg(conv string) string { return "im.msg." + conv }

// Deliver is the core-NATS delivery subject of one user: im.dlv.<user>.
func Deliver(user string) string { return "im.dlv." + user }

// Presence is the core-NATS subject of one user's presence changes:
// im.presence.<user>. The edges holding the user's devices publish there;
// the edges whose sessions watch the user subscribe, once per edge.
func Presence(user string) string { return "im.presence." + user }

// UserFromPresence returns the user of a presence subject, or "" if subj is
// not one (PresenceHeartbeat is not).
func UserFromPresence(subj string) string {
	const p = "im.presence."
	if len(subj) <= len(p) || subj[:len(p)] != p || strings.IndexByte(subj[len(p):], '.') >= 0 {
		return ""
	}
	return subj[len(p):]
}

// PresenceOnKey is the PRESENCE key of user's online lease on edge:
// on.<user>.<edge>.
func PresenceOnKey(user, edge string) string { return "on." + user + "." + edge }

// PresenceOnKeys matches every online lease of user: on.<user>.*.
func PresenceOnKeys(user string) string { return "on." + user + ".*" }

// PresenceSeenKey is the PRESENCE key of user's last_seen: seen.<user>.
func PresenceSeenKey(user string) string { return "seen." + user }

// PresenceHiddenKey is the PRESENCE key of user's hidden setting: hide.<user>.
func PresenceHiddenKey(user string) string { return "hide." + user }

// PresenceBlockKey is the PRESENCE key of the users user blocks:
// block.<user> (jetstream/blocks). It lives beside the presence keys so
// that an edge reads a watched user's blocks in the batched read of their
// presence.
func PresenceBlockKey(user string) string { return "block." + user }

// DeliveredKey is the CURSORS key of the delivered cursor (ack) of user's
// device in conv: <user>.<device>.<conv>.
func DeliveredKey(user, device, conv string) string { return user + "." + device + "." + conv }

// ActionsKey is the ACTIONS key of the message with seq in conv:
// <conv>.<block>.<seq>, block = (seq-1)/64, so that the keys of a page's
// messages are matched by one filter per block (ActionsBlockFilter).
func ActionsKey(conv string, seq uint64) string {
	return conv + "." + strconv.FormatUint((seq-1)/ActionsBlock, 10) + "." + strconv.FormatUint(seq, 10)
}

// ActionsBlock is how many seqs one block of ActionsKey spans.
const ActionsBlock = 64

// ActionsBlockFilter matches the ACTIONS keys of block k of conv (the
// seqs k*64+1 .. (k+1)*64): <conv>.<k>.*
func ActionsBlockFilter(conv string, k uint64) string {
	return conv + "." + strconv.FormatUint(k, 10) + ".*"
}

// ActionsUserKey is the ACTIONS key of user's reactions to the message
// with seq in conv: ActionsKey(conv, seq) + "." + user (one token more, so
// ActionsBlockFilter does not match it).
func ActionsUserKey(conv string, seq uint64, user string) string {
	return ActionsKey(conv, seq) + "." + user
}

// ActionsThreadKey is the ACTIONS key of chunk n of the reply seqs of the
// thread whose root is the message with seq in conv:
// ActionsKey(conv, seq) + ".t." + n (two tokens more, so neither
// ActionsBlockFilter nor ActionsBlockUserFilter matches it).
func ActionsThreadKey(conv string, seq uint64, n int) string {
	return ActionsKey(conv, seq) + ".t." + strconv.Itoa(n)
}

// ActionsMentionKey is the ACTIONS key of the seqs of the messages of conv
// that mention user: <conv>.m.u.<user> ("m" is no block number, so no
// filter of the message keys matches it).
func ActionsMentionKey(conv, user string) string { return conv + ".m.u." + user }

// ActionsMentionAllKey is the ACTIONS key of the seqs of the messages of
// conv that mention @all: <conv>.m.all.
func ActionsMentionAllKey(conv string) string { return conv + ".m.all" }

// ActionsThreadFilter matches every chunk key of the thread whose root is
// the message with seq in conv: ActionsKey(conv, seq) + ".t.*".
func ActionsThreadFilter(conv string, seq uint64) string {
	return ActionsKey(conv, seq) + ".t.*"
}

// ActionsBlockUserFilter matches user's ACTIONS keys of block k of conv:
// <conv>.<k>.*.<user>
func ActionsBlockUserFilter(conv string, k uint64, user string) string {
	return conv + "." + strconv.FormatUint(k, 10) + ".*." + user
}

// SettingsKey is the SETTINGS key of user's settings of conv: <user>.<conv>.
func SettingsKey(user, conv string) string { return user + "." + conv }

// ReadKey is the CURSORS key of user's read cursor in conv: <user>.<conv>
// (one token fewer than a DeliveredKey, so the two never collide).
func ReadKey(user, conv string) string { return user + "." + conv }

// PushKey is the PUSH key of the push registration of user's device:
// <user>.<device>.
func PushKey(user, device string) string { return user + "." + device }

// PushKeys matches every push registration of user: <user>.*.
func PushKeys(user string) string { return user + ".*" }

// RevokedJTIKey is the REVOKED key of one token id: jti.<base64url(jti)>
// (a jti may hold any character; its encoding is a valid key).
func RevokedJTIKey(jti string) string {
	return RevokedJTIPrefix + base64.RawURLEncoding.EncodeToString([]byte(jti))
}

// RevokedUserKey is the REVOKED key of a user's revocation (tokens issued
// before a time): user.<user>.
func RevokedUserKey(user string) string { return RevokedUserPrefix + user }

// RevokedDeviceKey is the REVOKED key of a revocation of one user's device:
// dev.<user>.<device>.
func RevokedDeviceKey(user, device string) string { return RevokedDevicePrefix + user + "." + device }

// BanKey is the REVOKED key of a user's ban: ban.<user>.
func BanKey(user string) string { return BanPrefix + user }

// FrozenKey is the REVOKED key of a conversation an operator froze (no
// sends, no member changes): frozen.<conv>. It sits in REVOKED because
// every edge watches that bucket already.
func FrozenKey(conv string) string { return FrozenPrefix + conv }

// Prefixes of the REVOKED keys, for telling a watched key's kind.
const (
	RevokedJTIPrefix    = "jti."
	RevokedUserPrefix   = "user."
	RevokedDevicePrefix = "dev."
	BanPrefix           = "ban."
	FrozenPrefix        = "frozen."
)

// KVSubject is the stream subject of key in bucket: $KV.<bucket>.<key>.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// ActionsBlockAll matches every ACTIONS key of block k of conv (records,
// reactions, thread chunks): <conv>.<k>.>, for the retention role's purge.
func ActionsBlockAll(conv string, k uint64) string {
	return conv + "." + strconv.FormatUint(k, 10) + ".>"
}

// UserFromDeliver returns the user of a delivery subject, or "" if subj is
// not one (DeliverGroups is not).
func UserFromDeliver(subj string) string {
	const p = "im.dlv."
	if len(subj) <= len(p) || subj[:len(p)] != p || strings.IndexByte(subj[len(p):], '.') >= 0 {
		return ""
	}
	return subj[len(p):]
}

// DLQ is the dead-letter subject of a worker role: im.dlq.<role>.
func DLQ(role string) string { return "im.dlq." + role }

// MembersChanged is published (core NATS) whenever the member set of conv
// changes, so that membership caches drop their entry: im.members.<conv>.
func MembersChanged(conv string) string { return "im.members." + conv }

// ConvFromMsg returns the conversation id of a log subject, or "" if subj is
// not one.
func ConvFromMsg(subj string) string {
	const p = "im.msg."
	if len(subj) <= len(p) || subj[:len(p)] != p {
		return ""
	}
	return subj[len(p):]
}

// ConvEndpoint is the subject of one conversations endpoint: natter.conv.<op>.
func ConvEndpoint(op string) string { return ConvAPIPrefix + "." + op }

// APIEndpoint is the subject of one service API endpoint: natter.api.<op>.
func APIEndpoint(op string) string { return APIPrefix + "." + op }

// Ingest is the ingest subject of one conversation: im.ingest.<conv>.
func Ingest(conv string) string { return "im.ingest." + conv }

// ConvFromIngest returns the conversation id of an ingest subject, or "" if
// subj is not one.
func ConvFromIngest(subj string) string {
	const p = "im.ingest."
	if len(subj) <= len(p) || subj[:len(p)] != p {
		return ""
	}
	return subj[len(p):]
}

// Event is the subject of one event: im.evt.<kind>.<conv>.
func Event(kind, conv string) string { return "im.evt." + kind + "." + conv }

// EventsOfKind matches every event of one kind: im.evt.<kind>.>.
func EventsOfKind(kind string) string { return "im.evt." + kind + ".>" }

// KindFromEvent returns the <kind> token of an event subject, or "" if subj
// is not one.
func KindFromEvent(subj string) string {
	const p = "im.evt."
	if !strings.HasPrefix(subj, p) {
		return ""
	}
	kind, conv, ok := strings.Cut(subj[len(p):], ".")
	if !ok || kind == "" || conv == "" {
		return ""
	}
	return kind
}

// EventsOfConv matches every event of one conversation: im.evt.*.<conv>.
func EventsOfConv(conv string) string { return "im.evt.*." + conv }

// ServiceName is the micro service name of a worker role: natter-<role>.
func ServiceName(role string) string { return ServicePrefix + role }

// WebhookConsumer is the durable consumer of a webhook endpoint on EVENTS:
// WEBHOOK_<NAME>.
func WebhookConsumer(endpoint string) string { return "WEBHOOK_" + strings.ToUpper(endpoint) }

// WebhookRole is the runner role of a webhook endpoint, "webhook_<name>";
// its dead letters go to DLQ(WebhookRole(name)).
func WebhookRole(endpoint string) string { return "webhook_" + endpoint }

// Status is the subject of a role's (or the edge's) status endpoint, which
// answers with its live stats: natter.status.<role>.
func Status(role string) string { return "natter.status." + role }

// ValidID reports whether id can be a user, conversation or device id:
// 1..MaxIDLen characters of [A-Za-z0-9_-]. Such ids are safe as a single
// subject token and as a KV key part.
func ValidID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1..%d characters", ErrInvalidID, id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has %q (allowed: A-Z a-z 0-9 _ -)", ErrInvalidID, id, c)
		}
	}
	return nil
}

// Admin requests every edge answers (core NATS request with many replies:
// the admin API gathers the answers until a deadline).
const (
	// AdminSessions: the sessions of a user on the edge.
	AdminSessions = "natter.admin.sessions"
	// AdminDisconnect: close the sessions of a user (or one device).
	AdminDisconnect = "natter.admin.disconnect"
)

// LimitsUsage is where every edge publishes, every few hundred
// milliseconds, its users' usage of the deployment-wide limits (messages,
// REST requests, connections: edge/limits); every edge listens.
const LimitsUsage = "im.limits.usage"

// KVStream and ObjectStream are the stream names behind a KV bucket and an
// object store (nats.go's conventions), for tools that handle the buckets
// as the streams they are (natter backup).
func KVStream(bucket string) string { return "KV_" + bucket }

// ObjectStream: see [KVStream].
func ObjectStream(bucket string) string { return "OBJ_" + bucket }

// BackupGapToken is the last token of the subject natter restore fills
// sequence gaps on (placeholders it purges before the restore ends). It
// holds a '~', which no id may ([ValidID]), so it names no conversation,
// user or key.
const BackupGapToken = "~natter-backup-gap"

// BackupGapSubject is the placeholder subject of a stream whose first
// subject filter is filter: the filter's wildcard token replaced by
// [BackupGapToken] ("im.msg.>" -> "im.msg.~natter-backup-gap"), or the
// token appended to a literal subject.
func BackupGapSubject(filter string) string {
	if i := strings.LastIndexByte(filter, '.'); i >= 0 && (filter[i+1:] == ">" || filter[i+1:] == "*") {
		return filter[:i+1] + BackupGapToken
	}
	return filter + "." + BackupGapToken
}
