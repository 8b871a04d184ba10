package convsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/store"
)

// Group roles and moderation (docs/protocol.md, "Group roles"): who may do
// what is convapi.Permit, the one table the edge, this service and the
// message actions share. A change (the moderate op) runs under the group's
// lock (store.Moderate), takes the group's next rev, writes its
// conversation_updated event to the outbox first, then publishes the
// membership notice (the member caches of the edges and the fan-out drop
// the group, and reload its members with the moderation the send checks
// use), the event, and pushes roles, muted or updated to every member.

// apiMod is m as the contract has it.
func apiMod(m store.Moderation) convapi.Moderation {
	return convapi.Moderation{Owner: m.Owner, Admins: m.Admins, Muted: m.Muted, Announce: m.Announce}
}

// roleOf is user's role in a group whose moderation is m (user a member).
func roleOf(m store.Moderation, user string) convapi.Role {
	a := apiMod(m)
	return a.RoleOf(user)
}

// permit checks user's permission for act on the members targets of group
// c (moderation m), naming the first refused target.
func permit(c natter.Conversation, m store.Moderation, user string, act convapi.Action, targets ...string) error {
	actor := roleOf(m, user)
	if len(targets) == 0 {
		return convapi.Permit(c.Kind, actor, act, convapi.RoleMember)
	}
	for i, u := range targets {
		if err := convapi.Permit(c.Kind, actor, act, roleOf(m, u)); err != nil {
			var ce *convapi.Error
			if errors.As(err, &ce) && ce.Code == convapi.CodeForbidden {
				return &convapi.Error{Code: ce.Code, Msg: fmt.Sprintf("users[%d] (%s): %s", i, u, ce.Msg)}
			}
			return err
		}
	}
	return nil
}

// groupMod returns the moderation of conversation c (read without its
// lock: the check of a member change or rename); a direct conversation's
// is empty.
func (s *service) groupMod(ctx context.Context, c natter.Conversation) (store.Moderation, error) {
	if c.Kind != natter.KindGroup {
		return store.Moderation{}, nil
	}
	m, _, err := s.st.Moderation(ctx, c.ID)
	return m, err
}

// checkModerate validates the fields of in for its action.
func (s *service) checkModerate(in *convapi.ModerateRequest) ([]string, error) {
	if err := validIDs("user", in.User, "conv", in.Conv); err != nil {
		return nil, err
	}
	switch in.Action {
	case convapi.ModAdminsAdd, convapi.ModAdminsRemove, convapi.ModMute, convapi.ModUnmute:
		users, err := s.changedUsers(in.Users)
		if err != nil {
			return nil, err
		}
		if in.Action == convapi.ModMute && (in.DurationMS <= 0 || in.DurationMS > convapi.MaxMuteDuration.Milliseconds()) {
			return nil, badFrame("duration_ms", fmt.Sprintf("required: 1..%d (a year)", convapi.MaxMuteDuration.Milliseconds()))
		}
		return users, nil
	case convapi.ModTransfer:
		if in.To == "" {
			return nil, badFrame("to", "required: the member who becomes the owner")
		}
		return nil, validIDs("to", in.To)
	case convapi.ModUpdate:
		if in.Description == nil && in.AvatarURL == nil && in.Announce == nil {
			return nil, badFrame("description", "conv.update needs description, avatar_url or announce")
		}
		if d := in.Description; d != nil && (len(*d) > convapi.MaxDescriptionLen || !utf8.ValidString(*d)) {
			return nil, badFrame("description", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", convapi.MaxDescriptionLen))
		}
		if a := in.AvatarURL; a != nil && (len(*a) > convapi.MaxAvatarURLLen || !utf8.ValidString(*a)) {
			return nil, badFrame("avatar_url", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", convapi.MaxAvatarURLLen))
		}
		return nil, nil
	case "":
		return nil, badFrame("action", "required")
	}
	return nil, badFrame("action", "unknown action "+strconv.Quote(in.Action))
}

// moderate is the moderate op.
func (s *service) moderate(ctx context.Context, in *convapi.ModerateRequest) (any, error) {
	users, err := s.checkModerate(in)
	if err != nil {
		return nil, err
	}
	if err := s.requireMember(ctx, in.User, in.Conv); err != nil {
		return nil, err
	}
	c, err := s.st.GetConversation(ctx, in.Conv, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotMember
	}
	if err != nil {
		return nil, err
	}
	if c.Kind != natter.KindGroup {
		return nil, convapi.Permit(c.Kind, convapi.RoleMember, convapi.ActUpdate, convapi.RoleMember)
	}
	now := time.Now().UnixMilli()
	var upd natter.EventUpdate // filled by apply: the event and the push
	apply := func(ctx context.Context, m *store.Moderation) (bool, error) {
		ch, err := s.applyModerate(ctx, c, in, users, now, m)
		upd = update(in.Action, users, now+in.DurationMS, *m)
		return ch, err
	}
	var made []store.Pending
	var ev store.EventFunc
	if s.cfg.Events != nil {
		ev = func(rev int64, _ []string) (store.Pending, error) {
			at := time.Now().UnixMilli()
			e, err := events.ConversationUpdated(c.ID, in.User, strconv.FormatInt(rev, 10), upd, at)
			p := store.Pending{Event: e, At: at}
			if err == nil {
				made = append(made, p)
			}
			return p, err
		}
	}
	ch, _, err := s.st.Moderate(ctx, c.ID, apply, ev)
	if err != nil || ch.Changed {
		s.dropSummary(ctx, c.ID)
		s.notify(c.ID, nil, true) // the member caches' moderation, the summaries
	}
	if err != nil {
		return nil, err
	}
	s.flush(ctx, c.ID, made)
	if ch.Changed {
		s.push(ctx, c.ID, nil, nil, protocol.ConvPush(convFrame(c.ID, in.User, ch.Rev, upd)), ch.Count)
	}
	return empty{}, nil
}

// applyModerate checks and makes in's change to m (under the group's
// lock) and reports whether it changed anything.
func (s *service) applyModerate(ctx context.Context, c natter.Conversation, in *convapi.ModerateRequest, users []string, now int64, m *store.Moderation) (bool, error) {
	switch in.Action {
	case convapi.ModAdminsAdd, convapi.ModAdminsRemove:
		if err := permit(c, *m, in.User, convapi.ActAdmins, users...); err != nil {
			return false, err
		}
		if in.Action == convapi.ModAdminsRemove {
			n := len(m.Admins)
			m.Admins = slices.DeleteFunc(m.Admins, func(u string) bool { return slices.Contains(users, u) })
			return len(m.Admins) != n, nil
		}
		if err := s.requireMembers(ctx, c.ID, users); err != nil {
			return false, err
		}
		changed := false
		for _, u := range users {
			if !slices.Contains(m.Admins, u) {
				m.Admins, changed = append(m.Admins, u), true
				m.Muted = slices.DeleteFunc(m.Muted, func(x natter.Mute) bool { return x.User == u })
			}
		}
		if len(m.Admins) > convapi.MaxAdmins {
			return false, &convapi.Error{Code: convapi.CodeTooBig, Msg: fmt.Sprintf("users: the group would have %d admins, at most %d", len(m.Admins), convapi.MaxAdmins)}
		}
		return changed, nil
	case convapi.ModTransfer:
		if err := permit(c, *m, in.User, convapi.ActTransfer); err != nil {
			return false, err
		}
		if in.To == m.Owner {
			return false, nil
		}
		if err := s.requireMembers(ctx, c.ID, []string{in.To}); err != nil {
			return false, err
		}
		old := m.Owner
		m.Owner = in.To
		m.Admins = slices.DeleteFunc(m.Admins, func(u string) bool { return u == in.To })
		m.Admins = append(m.Admins, old)
		m.Muted = slices.DeleteFunc(m.Muted, func(x natter.Mute) bool { return x.User == in.To })
		return true, nil
	case convapi.ModMute, convapi.ModUnmute:
		if err := permit(c, *m, in.User, convapi.ActMute, users...); err != nil {
			return false, err
		}
		n := len(m.Muted)
		m.Muted = slices.DeleteFunc(m.Muted, func(x natter.Mute) bool { return slices.Contains(users, x.User) })
		if in.Action == convapi.ModUnmute {
			return len(m.Muted) != n, nil
		}
		if err := s.requireMembers(ctx, c.ID, users); err != nil {
			return false, err
		}
		for _, u := range users {
			m.Muted = append(m.Muted, natter.Mute{User: u, Until: now + in.DurationMS})
		}
		if len(m.Muted) > convapi.MaxMuted {
			return false, &convapi.Error{Code: convapi.CodeTooBig, Msg: fmt.Sprintf("users: the group would have %d members muted, at most %d", len(m.Muted), convapi.MaxMuted)}
		}
		return true, nil
	case convapi.ModUpdate:
		if err := permit(c, *m, in.User, convapi.ActUpdate); err != nil {
			return false, err
		}
		before := *m
		if in.Description != nil {
			m.Description = *in.Description
		}
		if in.AvatarURL != nil {
			m.AvatarURL = *in.AvatarURL
		}
		if in.Announce != nil {
			m.Announce = *in.Announce
		}
		return m.Description != before.Description || m.AvatarURL != before.AvatarURL || m.Announce != before.Announce, nil
	}
	return false, badFrame("action", "unknown action "+strconv.Quote(in.Action))
}

// requireMembers answers forbidden naming the first of users who is not a
// member of conv (one _id lookup each).
func (s *service) requireMembers(ctx context.Context, conv string, users []string) error {
	for i, u := range users {
		ok, err := s.st.IsMember(ctx, conv, u)
		if err != nil {
			return err
		}
		if !ok {
			return &convapi.Error{Code: convapi.CodeForbidden, Msg: fmt.Sprintf("users[%d] (%s): not a member of the group", i, u)}
		}
	}
	return nil
}

// update is the event data of a moderate action, from the state after it.
func update(action string, users []string, until int64, m store.Moderation) natter.EventUpdate {
	switch action {
	case convapi.ModMute:
		return natter.EventUpdate{Change: natter.UpdateMuted, Users: users, Until: until}
	case convapi.ModUnmute:
		return natter.EventUpdate{Change: natter.UpdateMuted, Users: users}
	case convapi.ModUpdate:
		return natter.EventUpdate{Change: natter.UpdateProfile, Description: m.Description, AvatarURL: m.AvatarURL, Announce: m.Announce}
	}
	return natter.EventUpdate{Change: natter.UpdateRoles, Owner: m.Owner, Admins: slices.Sorted(slices.Values(m.Admins))}
}

// convFrame is the conv push of a moderate change.
func convFrame(conv, by string, rev int64, u natter.EventUpdate) protocol.ConvFrame {
	f := protocol.ConvFrame{Conv: conv, Rev: rev, By: by}
	switch u.Change {
	case natter.UpdateMuted:
		f.Event, f.N, f.Until = protocol.ConvMuted, len(u.Users), u.Until
		if len(u.Users) <= protocol.MaxConvEventUsers {
			f.Users = u.Users
		}
	case natter.UpdateProfile:
		f.Event, f.Description, f.AvatarURL, f.Announce = protocol.ConvUpdated, u.Description, u.AvatarURL, u.Announce
	default:
		f.Event, f.Owner, f.Admins = protocol.ConvRoles, u.Owner, u.Admins
	}
	return f
}
