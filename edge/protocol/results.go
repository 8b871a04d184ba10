package protocol

import (
	"encoding/json"
	"strconv"

	"github.com/natter-im/natter"
)

// Reply data of the ops, the "data" of a res frame. send answers with a
// [natter.Ack], conv.create and conv.get with a [natter.Conversation]; ack,
// read, members.add and members.remove answer with {}.

// SyncResult is the reply to sync.
type SyncResult struct {
	// Convs has one entry per conversation of the user (of the page, with
	// page_size).
	Convs []SyncConv `json:"convs"`
	// Next, with page_size, names the next page (send it as page); absent
	// on the last page.
	Next string `json:"next,omitempty"`
	// UnreadTotal is the sum of Unread over every conversation of the user
	// (with page_size: over every page of this pass, each as its page read
	// it). Set when the reply ends the list: without page_size, and on the
	// last page.
	UnreadTotal *uint64 `json:"unread_total,omitempty"`
}

// SyncConv is one conversation in a sync reply.
type SyncConv struct {
	Conv string `json:"conv"`
	// Head is the conversation's newest seq (0: no messages yet).
	Head uint64 `json:"head"`
	// Rev is the conversation's state version (absent: 0), as conv.get
	// and the conv pushes carry it: a rev above the one a client last saw
	// means its name or members changed meanwhile.
	Rev int64 `json:"rev,omitempty"`
	// Read is the user's read cursor (the last seq marked read on any
	// device, or sent by the user); 0 for none.
	Read uint64 `json:"read"`
	// Unread is Head - Read (0 when Read >= Head).
	Unread uint64 `json:"unread"`
	// Mentions is how many messages after Read mention the user or @all
	// (at most 100: the newest 100 mentions are kept); absent when 0.
	Mentions uint64 `json:"mentions,omitempty"`
	// Acked is this device's delivered cursor (its last ack); 0 for none.
	Acked uint64 `json:"acked"`
	// Msgs are the messages after the cursor, oldest first, at most the
	// limit; only for conversations named in the request's cursors.
	Msgs []natter.Message `json:"msgs,omitempty"`
	// More is true when messages after the last one in Msgs remain: sync
	// again from there.
	More bool `json:"more"`
	// Settings are the user's settings of the conversation, absent when
	// none is set (docs/protocol.md, "conv.settings").
	Settings *natter.ConvSettings `json:"settings,omitempty"`
	// Floor is set when the retention policy removed messages the cursor
	// had not reached: the oldest seq kept, where Msgs start. A client
	// moves its cursor to Floor-1 (nothing below it will come). Absent
	// otherwise.
	Floor uint64 `json:"floor,omitempty"`
}

// HistoryResult is the reply to history: a page, oldest first.
type HistoryResult struct {
	Msgs []natter.Message `json:"msgs"`
	// More is true when the page was cut: older messages exist (before, or
	// neither) or newer ones do (after).
	More bool `json:"more"`
	// Floor is the retention floor when the page reached the archive and
	// the retention policy removed older messages: the oldest seq kept.
	// A page below it is empty with more false. Absent otherwise.
	Floor uint64 `json:"floor,omitempty"`
}

// HistoryPage is a reply to history whose messages are log entries as
// stored, embedded without decoding them: each of Msgs is the JSON of one
// [natter.Message] as json.Marshal writes it. It encodes byte for byte as
// the [HistoryResult] of the decoded messages.
type HistoryPage struct {
	Msgs [][]byte
	More bool
}

// MarshalJSON is for encoders other than [Result] (the REST replies).
func (p HistoryPage) MarshalJSON() ([]byte, error) {
	return p.appendJSON(make([]byte, 0, p.size())), nil
}

// appendJSON appends {"msgs":[...],"more":...}.
func (p HistoryPage) appendJSON(b []byte) []byte {
	b = append(b, `{"msgs":[`...)
	for i, m := range p.Msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	b = append(b, `],"more":`...)
	b = strconv.AppendBool(b, p.More)
	return append(b, '}')
}

func (p HistoryPage) size() int {
	n := len(`{"msgs":[],"more":false}`)
	for _, m := range p.Msgs {
		n += len(m) + 1
	}
	return n
}

// ConvList is the reply to conv.list.
type ConvList struct {
	Convs []natter.Conversation `json:"convs"`
	// Next, with page_size, names the next page (send it as page); absent
	// on the last page.
	Next string `json:"next,omitempty"`
}

// MemberList is the reply to members.list.
type MemberList struct {
	Members []string `json:"members"`
}

// Pong is the reply to ping.
type Pong struct {
	// TS is the server time, Unix milliseconds.
	TS int64 `json:"ts"`
}

// The list replies encode a nil list as [], never null.

func (r SyncResult) MarshalJSON() ([]byte, error) {
	type plain SyncResult
	if r.Convs == nil {
		r.Convs = []SyncConv{}
	}
	return json.Marshal(plain(r))
}

func (r HistoryResult) MarshalJSON() ([]byte, error) {
	type plain HistoryResult
	if r.Msgs == nil {
		r.Msgs = []natter.Message{}
	}
	return json.Marshal(plain(r))
}

func (r ConvList) MarshalJSON() ([]byte, error) {
	type plain ConvList
	if r.Convs == nil {
		r.Convs = []natter.Conversation{}
	}
	return json.Marshal(plain(r))
}

func (r MemberList) MarshalJSON() ([]byte, error) {
	type plain MemberList
	if r.Members == nil {
		r.Members = []string{}
	}
	return json.Marshal(plain(r))
}

// PresenceState is the presence of one user: an entry of the reply to
// presence.sub, and the content of a presence push.
type PresenceState struct {
	User string `json:"user"`
	// Online is true while at least one device of the user is connected
	// to any edge (and the user does not hide presence).
	Online bool `json:"online"`
	// LastSeen is when (Unix ms) the user's last device went, for an
	// offline user; 0 (absent) when unknown or hidden.
	LastSeen int64 `json:"last_seen,omitempty"`
}

// PresenceResult is the reply to presence.sub: the current state of every
// user the request named, in its order.
type PresenceResult struct {
	Users []PresenceState `json:"users"`
}

// Receipt is one member's read cursor in a receipts reply: Seq is the last
// seq User has read (0: nothing yet).
type Receipt struct {
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// ReceiptsResult is the reply to receipts: a page of the members' read
// cursors, sorted by user id.
type ReceiptsResult struct {
	Reads []Receipt `json:"reads"`
	// Next is set when more members follow: send it as after_user.
	Next string `json:"next,omitempty"`
}

func (r ReceiptsResult) MarshalJSON() ([]byte, error) {
	type plain ReceiptsResult
	if r.Reads == nil {
		r.Reads = []Receipt{}
	}
	return json.Marshal(plain(r))
}

// ReactResult is the reply to react: the emoji's count on the message
// after the request, and whether the user's reaction is on it.
type ReactResult struct {
	Count int  `json:"count"`
	Mine  bool `json:"mine"`
}

// BlockList is the result of block, unblock and blocks.list: the users the
// user blocks (after the change), sorted.
type BlockList struct {
	Users []string `json:"users"`
}
