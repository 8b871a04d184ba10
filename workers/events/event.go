package events

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
)

// Event id prefixes.
const (
	idMessage = "msg:"
	idConv    = "conv:"
	idJoin    = "join:"
	idLeave   = "leave:"
	idRename  = "rename:"
	idRead    = "read:"
	idUpdate  = "update:"
)

// KindOf returns the event kind of a log entry: message_edited for an edit
// entry, message_deleted for a delete entry, message_created otherwise.
func KindOf(m natter.Message) string {
	switch {
	case m.IsEdit():
		return natter.EventMessageEdited
	case m.IsDelete():
		return natter.EventMessageDeleted
	}
	return natter.EventMessageCreated
}

// MessageEvent is the event of a log entry: id "msg:" + message id, actor
// the sender, ts the message's, data the message.
func MessageEvent(m natter.Message) (natter.Event, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode message %s: %w", m.ID, err)
	}
	return natter.Event{ID: idMessage + m.ID, Kind: KindOf(m), Conv: m.Conv, TS: m.TS, Actor: m.From, Data: data}, nil
}

// ConversationCreated is the event of a new conversation: id "conv:" + its
// id (conversation ids are never reused), actor the creator, data the
// conversation with its members.
func ConversationCreated(c natter.Conversation) (natter.Event, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode conversation %s: %w", c.ID, err)
	}
	return natter.Event{ID: idConv + c.ID, Kind: natter.EventConversationCreated, Conv: c.ID, TS: c.CreatedAt, Actor: c.CreatedBy, Data: data}, nil
}

// MembersJoined is the event of users joining conv by actor's doing. version
// identifies this one change (choose it once, before the first publish, and
// reuse it for retries): the id is "join:" + conv + ":" + version.
func MembersJoined(conv, actor, version string, users []string, ts int64) (natter.Event, error) {
	return members(natter.EventMemberJoined, idJoin, conv, actor, version, users, ts)
}

// MembersLeft is the event of users leaving (or being removed from) conv;
// its id is "leave:" + conv + ":" + version. See [MembersJoined].
func MembersLeft(conv, actor, version string, users []string, ts int64) (natter.Event, error) {
	return members(natter.EventMemberLeft, idLeave, conv, actor, version, users, ts)
}

func members(kind, prefix, conv, actor, version string, users []string, ts int64) (natter.Event, error) {
	if users == nil {
		users = []string{}
	}
	data, err := json.Marshal(natter.EventUsers{Users: users})
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode users: %w", err)
	}
	return natter.Event{ID: prefix + conv + ":" + version, Kind: kind, Conv: conv, TS: ts, Actor: actor, Data: data}, nil
}

// ConversationRenamed is the event of group conv renamed to name by actor;
// version identifies the rename as for [MembersJoined]: the id is
// "rename:" + conv + ":" + version.
func ConversationRenamed(conv, actor, version, name string, ts int64) (natter.Event, error) {
	data, err := json.Marshal(natter.EventName{Name: name})
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode name: %w", err)
	}
	return natter.Event{ID: idRename + conv + ":" + version, Kind: natter.EventConversationRenamed, Conv: conv, TS: ts, Actor: actor, Data: data}, nil
}

// ReadMoved is the event of user's read cursor in conv moving forward to
// seq. A cursor reaches a seq at most once, so the id is "read:" + conv +
// ":" + user + ":" + seq.
func ReadMoved(conv, user string, seq uint64, ts int64) (natter.Event, error) {
	data, err := json.Marshal(natter.EventRead{User: user, Seq: seq})
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode read: %w", err)
	}
	return natter.Event{
		ID: idRead + conv + ":" + user + ":" + strconv.FormatUint(seq, 10), Kind: natter.EventReadMoved,
		Conv: conv, TS: ts, Actor: user, Data: data,
	}, nil
}

// ConversationUpdated is the event of a moderation or profile change of
// group conv by actor; version identifies the change as for
// [MembersJoined]: the id is "update:" + conv + ":" + version.
func ConversationUpdated(conv, actor, version string, u natter.EventUpdate, ts int64) (natter.Event, error) {
	data, err := json.Marshal(u)
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: encode update: %w", err)
	}
	return natter.Event{ID: idUpdate + conv + ":" + version, Kind: natter.EventConversationUpdated, Conv: conv, TS: ts, Actor: actor, Data: data}, nil
}

// FromEntry is the message event of a log entry read from MSGS (its
// payload and headers, as a consumer of im.msg.> gets them): the same
// envelope the events role publishes to EVENTS (id "msg:" + message id,
// kind from the entry's type and ref, actor the sender, ts the message's,
// data the entry). See docs/events.md, "Message events".
func FromEntry(data []byte, hdr nats.Header) (natter.Event, error) {
	m, err := msglog.Decode(data, hdr)
	if err != nil {
		return natter.Event{}, fmt.Errorf("events: log entry: %w", err)
	}
	return MessageEvent(m)
}

// IsMessageKind reports the kinds of the log's entries (message_created,
// message_edited, message_deleted): consumers read them from MSGS.
func IsMessageKind(kind string) bool {
	return kind == natter.EventMessageCreated || kind == natter.EventMessageEdited || kind == natter.EventMessageDeleted
}
