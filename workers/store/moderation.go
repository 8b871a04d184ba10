package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// A group's moderation (roles, mutes, announcement mode) and profile
// (description, avatar URL) live in the head of its member list (_id
// conv, members.go), beside its rev and name: read by _id with the head
// every reader already reads, and changed under the group's lock like a
// member change, taking the group's next rev. A head written before roles
// existed has none of these fields: its owner is the conversation's
// creator (created_by of its document), it has no admins, no mutes, and
// announcement mode is off. Removing a member drops their admin role and
// mute (removeLocked).

// modFields are the moderation fields of a member head.
type modFields struct {
	// Owner is the owner once ownership was transferred; nil means the
	// creator.
	Owner    *string       `bson:"owner,omitempty"`
	Admins   []string      `bson:"admins,omitempty"`
	Muted    []natter.Mute `bson:"muted,omitempty"`
	Announce bool          `bson:"announce,omitempty"`
	Desc     string        `bson:"desc,omitempty"`
	Avatar   string        `bson:"avatar,omitempty"`
}

// Moderation is a group's roles, mutes, announcement mode and profile.
type Moderation struct {
	Owner       string
	Admins      []string // sorted
	Muted       []natter.Mute
	Announce    bool
	Description string
	AvatarURL   string
}

// forget drops users' admin roles and mutes (they left).
func (h *listHead) forget(users []string) {
	h.Mod.Admins = slices.DeleteFunc(h.Mod.Admins, func(u string) bool { return slices.Contains(users, u) })
	h.Mod.Muted = slices.DeleteFunc(h.Mod.Muted, func(m natter.Mute) bool { return slices.Contains(users, m.User) })
}

// moderation returns the head's moderation, with owner as the owner when
// the head names none, and only the mutes that last past now.
func (h *listHead) moderation(owner string, now int64) Moderation {
	m := Moderation{Owner: owner, Admins: slices.Clone(h.Mod.Admins), Announce: h.Mod.Announce, Description: h.Mod.Desc, AvatarURL: h.Mod.Avatar}
	if h.Mod.Owner != nil {
		m.Owner = *h.Mod.Owner
	}
	for _, x := range h.Mod.Muted {
		if x.Until > now {
			m.Muted = append(m.Muted, x)
		}
	}
	return m
}

// fill sets c's moderation fields from the head (c.CreatedBy is the owner
// when the head names none).
func (h *listHead) fill(c *natter.Conversation) {
	m := h.moderation(c.CreatedBy, time.Now().UnixMilli())
	c.Owner, c.Admins, c.Muted, c.Announce, c.Description, c.AvatarURL = m.Owner, m.Admins, m.Muted, m.Announce, m.Description, m.AvatarURL
}

// creator reads the created_by of conversation conv (ErrNotFound).
func (s *Store) creator(ctx context.Context, conv string) (string, string, error) {
	var c struct {
		Kind      string `bson:"kind"`
		CreatedBy string `bson:"created_by"`
	}
	opts := options.FindOne().SetProjection(bson.D{{Key: "kind", Value: 1}, {Key: "created_by", Value: 1}})
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: conv}}, opts).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", "", fmt.Errorf("store: conversation %s: %w", conv, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("store: get conversation: %w", err)
	}
	return c.Kind, c.CreatedBy, nil
}

// Moderation returns group conv's moderation and rev: two lookups by _id
// (its head, and its document for the creator and kind), one when the
// head names the owner. A direct conversation's is empty; an unknown one
// is ErrNotFound.
func (s *Store) Moderation(ctx context.Context, conv string) (Moderation, int64, error) {
	h, _, err := s.head(ctx, conv)
	if err != nil {
		return Moderation{}, 0, err
	}
	owner := ""
	if h.Mod.Owner == nil || !natter.IsGroupID(conv) {
		kind, by, err := s.creator(ctx, conv)
		if err != nil {
			return Moderation{}, 0, err
		}
		if kind != natter.KindGroup {
			return Moderation{}, 0, nil
		}
		owner = by
	}
	return h.moderation(owner, time.Now().UnixMilli()), h.Rev, nil
}

// ModerateFunc edits a group's moderation in place and reports whether it
// changed it; an error stops the change (nothing is written).
type ModerateFunc func(ctx context.Context, m *Moderation) (changed bool, err error)

// Moderate changes group conv's moderation with fn under the group's lock
// (shared with its member changes and renames, so they share one rev).
// Mutes that ended are dropped first. A change takes the next rev: with
// ev set its event goes to the outbox first, then the head is written
// once. No change leaves the rev (no event). It returns the change (Rev,
// Count) and the moderation after it.
func (s *Store) Moderate(ctx context.Context, conv string, fn ModerateFunc, ev EventFunc) (Change, Moderation, error) {
	var ch Change
	var m Moderation
	err := s.locked(ctx, []string{"m/" + conv}, func(ctx context.Context) error {
		h, _, err := s.head(ctx, conv)
		if err != nil {
			return err
		}
		h.ID = conv
		owner := ""
		if h.Mod.Owner == nil {
			if _, owner, err = s.creator(ctx, conv); err != nil {
				return err
			}
		}
		m = h.moderation(owner, time.Now().UnixMilli())
		changed, err := fn(ctx, &m)
		if err != nil || !changed {
			ch = Change{Rev: h.Rev, Count: h.Count}
			return err
		}
		slices.Sort(m.Admins)
		m.Admins = slices.Compact(m.Admins)
		rev := h.Rev + 1
		if err := s.writeEvent(ctx, ev, rev, nil); err != nil {
			return fmt.Errorf("store: moderate: %w", err)
		}
		h.Rev = rev
		if m.Owner != owner || h.Mod.Owner != nil {
			h.Mod.Owner = &m.Owner
		}
		h.Mod = modFields{Owner: h.Mod.Owner, Admins: m.Admins, Muted: m.Muted, Announce: m.Announce, Desc: m.Description, Avatar: m.AvatarURL}
		if err := s.replace(ctx, s.mlists, conv, h); err != nil {
			return fmt.Errorf("store: moderate: write member head: %w", err)
		}
		ch = Change{Changed: true, Rev: rev, Count: h.Count}
		return nil
	})
	return ch, m, err
}
