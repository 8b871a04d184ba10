package convapi

import (
	"slices"
	"strconv"
	"time"

	natter "github.com/natter-im/natter"
)

// Roles of a group member. A group has one owner (its creator until it
// transfers ownership; a group created by a service is owned by that
// service, which is no member), any number of admins (at most MaxAdmins)
// and members. A direct conversation has no roles: its two users are
// members and nothing about it can change.
type Role string

// The roles, from most to least allowed. RoleNone is a user who is not a
// member.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleNone   Role = ""
)

// Action is what [Permit] decides on.
type Action string

// The actions of the permission matrix (docs/protocol.md, "Group roles").
// An action on a target (remove, mute, delete a message) is decided on the
// target's role as well.
const (
	// ActSend: send a message (plus the send checks of [Moderation.CanSend]).
	ActSend Action = "send"
	// ActSendAnnounce: send while the group is in announcement mode.
	ActSendAnnounce Action = "send.announce"
	// ActAddMembers: add members.
	ActAddMembers Action = "members.add"
	// ActRemoveMember: remove another member (the target).
	ActRemoveMember Action = "members.remove"
	// ActLeave: remove oneself.
	ActLeave Action = "leave"
	// ActRename: rename the group.
	ActRename Action = "rename"
	// ActUpdate: set the description, avatar URL or announcement mode.
	ActUpdate Action = "update"
	// ActMute: mute or unmute a member (the target).
	ActMute Action = "mute"
	// ActAdmins: appoint or demote an admin (the target).
	ActAdmins Action = "admins"
	// ActTransfer: make another member the owner.
	ActTransfer Action = "owner.transfer"
	// ActDeleteMessage: delete another user's message (the target is the
	// author's role; one's own messages follow the edit and recall rules).
	ActDeleteMessage Action = "msg.delete"
	// ActMentionAll: mention every member (natter.MentionAll) in a send.
	ActMentionAll Action = "mention.all"
)

// Actions lists every action, in the order of the matrix.
var Actions = []Action{
	ActSend, ActSendAnnounce, ActAddMembers, ActRemoveMember, ActLeave, ActRename, ActUpdate,
	ActMute, ActAdmins, ActTransfer, ActDeleteMessage, ActMentionAll,
}

// Roles lists every role, in the order of the matrix.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleNone}

// Limits of moderation.
const (
	// MaxAdmins is the most admins a group has.
	MaxAdmins = 100
	// MaxMuted is the most members muted at once in a group.
	MaxMuted = 1000
	// MaxMuteDuration is the longest mute (a year); a longer one is a
	// bad_frame.
	MaxMuteDuration = 366 * 24 * time.Hour
	// MaxDescriptionLen is the longest description, in bytes (500
	// characters of the protocol, up to 4 bytes each).
	MaxDescriptionLen = 2000
	// MaxAvatarURLLen is the longest avatar URL, in bytes.
	MaxAvatarURLLen = 1024
)

// Permit decides whether a user with role actor may do act in a
// conversation of kind (natter.KindDirect or natter.KindGroup), on a
// target with role target (for actions without one, pass [RoleMember]). It
// returns nil, or an [*Error] with [CodeNotMember] (the actor is no member)
// or [CodeForbidden] with a message naming the rule. The table of
// docs/protocol.md is this function; TestPermitMatrix checks every cell.
//
// A target who is no member ([RoleNone]) is allowed where a member would
// be: removing or muting someone who is not in the group is no change.
func Permit(kind string, actor Role, act Action, target Role) error {
	if actor == RoleNone {
		return &Error{Code: CodeNotMember, Msg: "not a member of the conversation"}
	}
	if kind != natter.KindGroup {
		if act == ActSend || act == ActSendAnnounce {
			return nil
		}
		return forbidden("a direct conversation cannot change: " + string(act) + " is for groups")
	}
	switch act {
	case ActSend:
		return nil
	case ActSendAnnounce:
		if actor == RoleMember {
			return forbidden("the group is in announcement mode: only its owner and admins send")
		}
		return nil
	case ActLeave:
		if actor == RoleOwner {
			return forbidden("the owner cannot leave: transfer ownership (owner.transfer) first")
		}
		return nil
	case ActAddMembers, ActRename, ActUpdate:
		if actor == RoleMember {
			return forbidden(string(act) + " is for the group's owner and admins")
		}
		return nil
	case ActRemoveMember, ActMute:
		switch {
		case actor == RoleMember:
			return forbidden(string(act) + " is for the group's owner and admins")
		case target == RoleOwner:
			return forbidden("the owner cannot be " + pastTense(act))
		case target == RoleAdmin && actor != RoleOwner:
			return forbidden("only the owner may act on an admin: an admin cannot be " + pastTense(act) + " by another admin")
		case target == RoleAdmin && act == ActMute:
			return forbidden("an admin cannot be muted: demote them first")
		}
		return nil
	case ActAdmins:
		if actor != RoleOwner {
			return forbidden("only the owner appoints and demotes admins")
		}
		if target == RoleOwner {
			return forbidden("the owner is no admin: transfer ownership instead")
		}
		return nil
	case ActTransfer:
		if actor != RoleOwner {
			return forbidden("only the owner transfers ownership")
		}
		return nil
	case ActDeleteMessage:
		if actor == RoleMember {
			return forbidden("only the group's owner and admins delete other members' messages")
		}
		return nil
	case ActMentionAll:
		if actor == RoleMember {
			return forbidden("only the group's owner and admins mention @all")
		}
		return nil
	}
	return forbidden("unknown action " + strconv.Quote(string(act)))
}

func pastTense(act Action) string {
	if act == ActMute {
		return "muted"
	}
	return "removed"
}

func forbidden(msg string) *Error { return &Error{Code: CodeForbidden, Msg: msg} }

// Mute is one muted member: User sends nothing until Until (Unix ms).
type Mute = natter.Mute

// Moderation is a group's roles and send rules: what the member cache
// keeps beside the members (from the members op), so that the edge checks
// a send with no request, and what conv.get and conv.list return. The zero
// value is a direct conversation's (nothing to check).
type Moderation struct {
	// Owner is the group's owner (its creator in a group that never
	// transferred ownership).
	Owner string `json:"owner,omitempty"`
	// Admins, sorted.
	Admins []string `json:"admins,omitempty"`
	// Muted are the members muted now (expired mutes are left out when
	// read, and dropped at the group's next change).
	Muted []Mute `json:"muted,omitempty"`
	// Announce: announcement mode, where only the owner and admins send.
	Announce bool `json:"announce,omitempty"`
	// Blockers are, in a direct conversation, its members who block the
	// other (who then cannot send in it).
	Blockers []string `json:"blockers,omitempty"`

	muted map[string]int64 // Muted by user, when indexed (MemberCache loads)
}

// index builds the lookup of the mutes (a member cache does it once per
// load, so a send in a group with many mutes is a map lookup).
func (m *Moderation) index() {
	if len(m.Muted) == 0 {
		return
	}
	m.muted = make(map[string]int64, len(m.Muted))
	for _, x := range m.Muted {
		m.muted[x.User] = max(m.muted[x.User], x.Until)
	}
}

// RoleOf returns user's role, given that user is a member (a member who is
// neither owner nor admin is RoleMember).
func (m *Moderation) RoleOf(user string) Role {
	switch {
	case user == m.Owner:
		return RoleOwner
	case slices.Contains(m.Admins, user):
		return RoleAdmin
	}
	return RoleMember
}

// MutedUntil returns when user's mute ends (Unix ms), or 0 when user is not
// muted at now.
func (m *Moderation) MutedUntil(user string, now int64) int64 {
	if m.muted != nil {
		if until := m.muted[user]; until > now {
			return until
		}
		return 0
	}
	for _, x := range m.Muted {
		if x.User == user && x.Until > now {
			return x.Until
		}
	}
	return 0
}

// CanSend decides a send by member user at now (Unix ms) in a conversation
// of kind: nil, or forbidden for a muted member and for a member in
// announcement mode, and in a direct conversation for a user the other
// member blocks. It reads only m (no request).
func (m *Moderation) CanSend(kind, user string, now int64) error {
	if kind != natter.KindGroup {
		for _, b := range m.Blockers {
			if b != user {
				return forbidden("blocked: " + b + " does not accept your messages")
			}
		}
		return nil
	}
	if !m.Announce && len(m.Muted) == 0 {
		return nil
	}
	role := m.RoleOf(user)
	if m.Announce {
		if err := Permit(kind, role, ActSendAnnounce, RoleMember); err != nil {
			return err
		}
	}
	if until := m.MutedUntil(user, now); until > 0 {
		return forbidden("muted in this group until " + time.UnixMilli(until).UTC().Format(time.RFC3339))
	}
	return nil
}

// Actions of the moderate op ([ModerateRequest.Action]); the client ops of
// the same names (docs/protocol.md).
const (
	ModAdminsAdd    = "admins.add"
	ModAdminsRemove = "admins.remove"
	ModTransfer     = "owner.transfer"
	ModMute         = "members.mute"
	ModUnmute       = "members.unmute"
	ModUpdate       = "conv.update"
)

// ModerateRequest is the request of moderate: User changes group Conv.
type ModerateRequest struct {
	User   string `json:"user"`
	Conv   string `json:"conv"`
	Action string `json:"action"`
	// Users are the members to appoint or demote (admins.*), or to mute
	// or unmute (members.*): 1..MaxUsersPerRequest.
	Users []string `json:"users,omitempty"`
	// To is the member who becomes the owner (owner.transfer); the owner
	// before becomes an admin.
	To string `json:"to,omitempty"`
	// DurationMS is how long a mute lasts (members.mute):
	// 1..MaxMuteDuration in milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Description, AvatarURL and Announce set what they name when present
	// (conv.update; at least one). An empty string clears.
	Description *string `json:"description,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
	Announce    *bool   `json:"announce,omitempty"`
}

// Permit is [Permit] for user acting in conv on target (a user, or "" for
// an action without one) with the roles of this member set: user's role
// is RoleNone when not a member, the target's RoleMember when it is ""
// or a member without a role. It reads the set only (no request): the
// message actions (an admin deleting another's message) call it with the
// set of [MemberCache.Set].
func (s MemberSet) Permit(conv, user string, act Action, target string) error {
	kind := natter.KindDirect
	if natter.IsGroupID(conv) {
		kind = natter.KindGroup
	}
	actor := RoleNone
	if s.Has(user) {
		actor = s.e.mod.RoleOf(user)
	}
	tr := RoleMember
	if target != "" {
		tr = s.e.mod.RoleOf(target)
	}
	return Permit(kind, actor, act, tr)
}
