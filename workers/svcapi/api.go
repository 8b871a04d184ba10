package svcapi

import (
	"strings"

	natter "github.com/natter-im/natter"
)

// Ops of the service API. The endpoint subject of op is
// subjects.APIEndpoint(op).
const (
	OpSend          = "send"
	OpConvCreate    = "conv.create"
	OpMembersAdd    = "members.add"
	OpMembersRemove = "members.remove"
	OpMembersList   = "members.list"
	OpHistory       = "history"
	OpEdit          = "msg.edit"
	OpDelete        = "msg.delete"
)

// Ops lists every op.
var Ops = []string{OpSend, OpConvCreate, OpMembersAdd, OpMembersRemove, OpMembersList, OpHistory, OpEdit, OpDelete}

// History page limits, as for clients.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
)

// SendRequest is the request of send.
type SendRequest struct {
	// Service is the sending service identity; it becomes the message's
	// from.
	Service string `json:"service"`
	Conv    string `json:"conv"`
	// Cmid is the idempotency key: 1..64 characters of [A-Za-z0-9_-],
	// unique per message of this service in this conversation.
	Cmid string `json:"cmid"`
	// Body is the text, 1..MaxBody bytes.
	Body string `json:"body"`
	// Type is application-defined, at most MaxType bytes; "edit" and
	// "delete" are reserved. Empty means "text".
	Type string `json:"type,omitempty"`
}

// CreateRequest is the request of conv.create. The service becomes the
// creator, not a member.
type CreateRequest struct {
	Service string `json:"service"`
	// Kind is "direct" (Members: exactly two users) or "group".
	Kind string `json:"kind"`
	// Name of a group.
	Name string `json:"name,omitempty"`
	// Members: two users for a direct conversation, at least one for a
	// group.
	Members []string `json:"members"`
}

// MembersRequest is the request of members.add, members.remove (Users) and
// members.list (no Users).
type MembersRequest struct {
	Service string   `json:"service"`
	Conv    string   `json:"conv"`
	Users   []string `json:"users,omitempty"`
}

// MembersReply is the reply of members.list.
type MembersReply struct {
	Members []string `json:"members"`
}

// HistoryRequest is the request of history. Before and After are
// exclusive seqs. With After set (0 included: from the first message) the
// page holds the oldest messages after it and More says whether newer ones
// follow; otherwise the newest messages before Before (0: the newest page)
// and More says whether older ones exist. Pages older than the hot tier
// come from the archive; the reply is the same.
type HistoryRequest struct {
	Service string  `json:"service"`
	Conv    string  `json:"conv"`
	Before  uint64  `json:"before,omitempty"`
	After   *uint64 `json:"after,omitempty"`
	// Limit is 1..MaxHistoryLimit; 0 means DefaultHistoryLimit.
	Limit int `json:"limit,omitempty"`
}

// HistoryReply is the reply of history: messages oldest first.
type HistoryReply struct {
	Msgs []natter.Message `json:"msgs"`
	More bool             `json:"more"`
}

// EditRequest is the request of msg.edit: Body replaces the body of the
// message Ref, which Service sent.
type EditRequest struct {
	Service string `json:"service"`
	Conv    string `json:"conv"`
	Ref     string `json:"ref"`
	Cmid    string `json:"cmid"`
	Body    string `json:"body"`
}

// DeleteRequest is the request of msg.delete: the message Ref is deleted.
type DeleteRequest struct {
	Service string `json:"service"`
	Conv    string `json:"conv"`
	Ref     string `json:"ref"`
	Cmid    string `json:"cmid"`
}

// endpointName is the micro endpoint name of op (no dots allowed).
func endpointName(op string) string { return strings.ReplaceAll(op, ".", "_") }
