package webhooks

import (
	"strings"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Names this package builds. They belong in package subjects (owned by the
// events work); they live here until they move.
const (
	// StreamEvents is the stream of state-change events (subjects EventsAll).
	StreamEvents = "EVENTS"
	// EventsAll matches every event subject im.evt.<kind>.<conv>.
	EventsAll = "im.evt.>"

	// consumerPrefix + upper-cased endpoint name is an endpoint's durable.
	consumerPrefix = "WEBHOOK_"
	// rolePrefix + endpoint name is an endpoint's runner role, which names
	// its dead-letter subject subjects.DLQ(role).
	rolePrefix = "webhook_"
)

// Event kinds (the <kind> token of im.evt.<kind>.<conv>).
const (
	KindMessageCreated      = "message_created"
	KindMessageEdited       = "message_edited"
	KindMessageDeleted      = "message_deleted"
	KindMemberJoined        = "member_joined"
	KindMemberLeft          = "member_left"
	KindConversationCreated = "conversation_created"
	KindConversationRenamed = "conversation_renamed"
	KindReadMoved           = "read_moved"
)

// isMessageKind reports the kinds of the log's entries, which consumers
// read from MSGS.
func isMessageKind(k string) bool {
	return k == KindMessageCreated || k == KindMessageEdited || k == KindMessageDeleted
}

// KnownKinds lists every event kind an endpoint may select.
var KnownKinds = []string{
	KindMessageCreated, KindMessageEdited, KindMessageDeleted,
	KindMemberJoined, KindMemberLeft, KindConversationCreated, KindConversationRenamed, KindReadMoved,
}

// MaxNameLen is the longest endpoint name: the name is part of the runner
// role "webhook_<name>", which must be a valid id (subjects.MaxIDLen).
const MaxNameLen = subjects.MaxIDLen - len(rolePrefix)

// EventsOfKind matches every event of one kind: im.evt.<kind>.>.
func EventsOfKind(kind string) string { return "im.evt." + kind + ".>" }

// ConsumerName is the durable consumer of an endpoint on the events stream:
// WEBHOOK_<NAME>.
func ConsumerName(endpoint string) string { return consumerPrefix + strings.ToUpper(endpoint) }

// Role is the runner role of an endpoint, "webhook_<name>": it labels the
// natter_worker_* metrics and names the dead-letter subject.
func Role(endpoint string) string { return rolePrefix + endpoint }

// DeadLetterSubject is where an endpoint's undeliverable events go:
// im.dlq.webhook_<name>, kept by the DLQ stream (im.dlq.>).
func DeadLetterSubject(endpoint string) string { return subjects.DLQ(Role(endpoint)) }

// kindOfSubject returns the <kind> token of im.evt.<kind>.<conv>, or "".
func kindOfSubject(subj string) string {
	const p = "im.evt."
	if !strings.HasPrefix(subj, p) {
		return ""
	}
	kind, _, ok := strings.Cut(subj[len(p):], ".")
	if !ok {
		return ""
	}
	return kind
}
