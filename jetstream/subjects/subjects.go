package subjects

import (
	"errors"
	"fmt"
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
)

// Durable consumers, one per worker role; replicas of a role share it.
const (
	ConsumerPersist = "PERSIST"
	ConsumerFanout  = "FANOUT"
)

// KV buckets.
const (
	// BucketIdem holds the durable idempotency records of sends (TTL bound).
	BucketIdem = "IDEM"
	// BucketCursors holds per-device delivered cursors.
	BucketCursors = "CURSORS"
	// BucketPresence holds online users with a TTL.
	BucketPresence = "PRESENCE"
)

// Subject trees.
const (
	// MsgsAll matches every conversation's log subject.
	MsgsAll = "im.msg.>"
	// DLQAll matches every dead-letter subject.
	DLQAll = "im.dlq.>"
	// DeliverAll matches every per-user delivery subject.
	DeliverAll = "im.dlv.*"
	// MembersChangedAll matches every membership-change notice.
	MembersChangedAll = "im.members.*"
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
)

// Msg is the log subject of one conversation: im.msg.<conv>.
func Msg(conv string) string { return "im.msg." + conv }

// Deliver is the core-NATS delivery subject of one user: im.dlv.<user>.
func Deliver(user string) string { return "im.dlv." + user }

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
