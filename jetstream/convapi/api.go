package convapi

import (
	"strings"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Ops of the conversations service. The endpoint subject of op is
// subjects.ConvEndpoint(op).
const (
	OpCreate        = "create"
	OpGet           = "get"
	OpList          = "list"
	OpMembersAdd    = "members.add"
	OpMembersRemove = "members.remove"
	OpMembersList   = "members.list"
	OpMembers       = "members"
	OpRename        = "rename"
	OpRead          = "read"
	OpHistory       = "history"
	// OpModerate is every change of a group's roles, mutes and profile
	// (ModerateRequest.Action).
	OpModerate = "moderate"
	// OpBlock, OpUnblock and OpBlocks change and list the users a user
	// blocks (BlockRequest, BlocksReply).
	OpBlock   = "block"
	OpUnblock = "unblock"
	OpBlocks  = "blocks"

	// Ops on behalf of an internal service (the service API), which is not
	// a member of the conversations it changes.
	OpServiceCreate        = "service.create"
	OpServiceMembersAdd    = "service.members.add"
	OpServiceMembersRemove = "service.members.remove"
	// Internal reads without an acting user.
	OpMessages = "messages"
	OpMessage  = "message"
)

// Limits of the wire protocol.
const (
	// MaxNameLen is the longest group name, in bytes: 128 characters (the
	// protocol's limit, edge/protocol.MaxName) of up to 4 bytes each.
	MaxNameLen = 512
	// DefaultHistoryLimit is the page size of history when limit is 0.
	DefaultHistoryLimit = 50
	// MaxHistoryLimit is the largest limit history accepts.
	MaxHistoryLimit = 500
	// ListPageSize is the most conversations one list reply carries.
	ListPageSize = 1000
	// MaxInlineMembers is the largest group whose members get and list
	// carry; a larger one comes with member_count only (page through its
	// members with members.list). Direct conversations always carry their
	// two.
	MaxInlineMembers = 100
	// MaxMembersPage is the most members one members or members.list reply
	// carries (fewer when the server's max payload is small).
	MaxMembersPage = 10_000
)

// CreateRequest is the request of create.
type CreateRequest struct {
	// User is the acting user; it becomes the creator and a member.
	User string `json:"user"`
	// Kind is natter.KindDirect or natter.KindGroup.
	Kind string `json:"kind"`
	// With is the other user of a direct conversation (direct only).
	With string `json:"with,omitempty"`
	// Name of a group (group only, at most MaxNameLen bytes).
	Name string `json:"name,omitempty"`
	// Members of a group besides the creator (group only).
	Members []string `json:"members,omitempty"`
}

// ConvRequest is the request of get.
type ConvRequest struct {
	User string `json:"user"`
	Conv string `json:"conv"`
}

// ListRequest is the request of list.
type ListRequest struct {
	User string `json:"user"`
	// After asks for the page after the conversation id a reply gave as Next
	// (any conversation id: the page starts after it in id order).
	After string `json:"after,omitempty"`
	// Limit is the most conversations of the page: 1..ListPageSize, 0 means
	// ListPageSize.
	Limit int `json:"limit,omitempty"`
	// IDs asks for the conversation ids only (ListReply.IDs), without the
	// summaries: a sync needs no more, and it costs no summary lookups.
	IDs bool `json:"ids,omitempty"`
}

// ListReply is the reply of list.
type ListReply struct {
	// Convs are sorted by id, each with member_count, and with members for
	// a direct conversation and a group of at most MaxInlineMembers. Empty
	// when the request asked for IDs.
	Convs []natter.Conversation `json:"convs"`
	// IDs are the page's conversation ids, sorted, when the request asked
	// for IDs.
	IDs []string `json:"ids,omitempty"`
	// Revs, with IDs, are the conversations' revs in the order of IDs
	// (natter.Conversation.Rev); absent when every one is 0.
	Revs []int64 `json:"revs,omitempty"`
	// Next is set when there are more: send it as After.
	Next string `json:"next,omitempty"`
}

// MembersRequest is the request of members.list and of the internal members
// (which has no User).
type MembersRequest struct {
	User  string `json:"user,omitempty"`
	Conv  string `json:"conv"`
	After string `json:"after,omitempty"`
}

// MembersReply is the reply of members.list and members.
type MembersReply struct {
	// Members, sorted.
	Members []string `json:"members"`
	// Mod is a group's moderation, on the first page of the internal
	// members op (what the member cache keeps for the send checks).
	Mod *Moderation `json:"mod,omitempty"`
	// Next is set when there are more: send it as After.
	Next string `json:"next,omitempty"`
}

// ChangeMembersRequest is the request of members.add and members.remove.
type ChangeMembersRequest struct {
	User  string   `json:"user"`
	Conv  string   `json:"conv"`
	Users []string `json:"users"`
}

// RenameRequest is the request of rename: User, a member, renames group Conv
// to Name (1..MaxNameLen bytes).
type RenameRequest struct {
	User string `json:"user"`
	Conv string `json:"conv"`
	Name string `json:"name"`
}

// Notice is the body of a membership-change notice on
// subjects.MembersChanged(conv): the users whose conversation lists the
// change wrote (none for a rename). Pushed says that the service pushed the
// conv events of the change to the devices concerned itself; without it
// (an older service, or a write that failed part way) every edge pushes
// added or removed to the named users it holds, as it finds their
// membership.
type Notice struct {
	Users  []string `json:"users"`
	Pushed bool     `json:"pushed,omitempty"`
}

// ReadRequest is the request of read: move User's read cursor in Conv to Seq
// (never back).
type ReadRequest struct {
	User string `json:"user"`
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
}

// HistoryRequest is the request of history (archived messages).
//
// With After set, the page holds the oldest messages with seq > *After (and
// < Before if set), oldest first, and More says whether newer ones follow.
// Otherwise it holds the newest messages with seq < Before (any seq when
// Before is 0), oldest first, and More says whether older ones exist.
type HistoryRequest struct {
	User   string  `json:"user"`
	Conv   string  `json:"conv"`
	Before uint64  `json:"before,omitempty"`
	After  *uint64 `json:"after,omitempty"`
	// Limit is the most messages in the page: 1..MaxHistoryLimit, 0 means
	// DefaultHistoryLimit. A page may hold fewer to fit the max payload;
	// More is then true.
	Limit int `json:"limit,omitempty"`
}

// HistoryPage is the reply of history.
type HistoryPage struct {
	Msgs []natter.Message `json:"msgs"`
	More bool             `json:"more"`
	// Floor is the conversation's retention floor: the oldest seq kept
	// (the retention role removed every older one, and pages end there);
	// 0 when none was removed.
	Floor uint64 `json:"floor,omitempty"`
}

// ServiceCreateRequest is the request of service.create: Service creates a
// conversation it is not a member of.
type ServiceCreateRequest struct {
	// Service is the acting service identity; it becomes the creator.
	Service string `json:"service"`
	// Kind is natter.KindDirect or natter.KindGroup.
	Kind string `json:"kind"`
	// Name of a group (group only, at most MaxNameLen bytes).
	Name string `json:"name,omitempty"`
	// Members: exactly two users for a direct conversation, at least one
	// for a group.
	Members []string `json:"members"`
}

// ServiceMembersRequest is the request of service.members.add and
// service.members.remove.
type ServiceMembersRequest struct {
	Service string   `json:"service"`
	Conv    string   `json:"conv"`
	Users   []string `json:"users"`
}

// MessagesRequest is the request of the internal messages op: a page of
// archived messages like [HistoryRequest], without an acting user, and
// not_found for an unknown conversation.
type MessagesRequest struct {
	Conv   string  `json:"conv"`
	Before uint64  `json:"before,omitempty"`
	After  *uint64 `json:"after,omitempty"`
	Limit  int     `json:"limit,omitempty"`
}

// MessageRequest is the request of the internal message op: the archived
// message ID of conversation Conv, or not_found.
type MessageRequest struct {
	Conv string `json:"conv"`
	ID   string `json:"id"`
}

// EndpointName is the micro endpoint name of op (micro names allow no dots).
func EndpointName(op string) string { return strings.ReplaceAll(op, ".", "_") }

// ChangedConv returns the conversation of a membership-change
// subject (subjects.MembersChanged), or "" if subj is not one.
func ChangedConv(subj string) string {
	p := subjects.MembersChanged("")
	if len(subj) <= len(p) || !strings.HasPrefix(subj, p) {
		return ""
	}
	return subj[len(p):]
}

// BlockRequest is the request of block and unblock (Users: 1..
// MaxUsersPerRequest other users) and of blocks (no Users).
type BlockRequest struct {
	User  string   `json:"user"`
	Users []string `json:"users,omitempty"`
}

// BlocksReply is the reply of blocks: the users User blocks, sorted.
type BlocksReply struct {
	Users []string `json:"users"`
}
