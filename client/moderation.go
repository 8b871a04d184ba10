package client

import (
	"context"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// Group roles and moderation (docs/protocol.md, "Group roles"). Each call
// is allowed to the roles of the permission table and answers forbidden
// ([protocol.CodeForbidden]) otherwise; a change is pushed to every member
// as a conv event on [Client.ConvEvents] (roles, muted, updated), and a
// request for the state the group has already changes nothing, so every
// call is safe to retry.

// GroupUpdate is what [Client.UpdateGroup] sets: the fields that are not
// nil ("" clears a string).
type GroupUpdate struct {
	Description *string
	AvatarURL   *string
	Announce    *bool
}

// UpdateGroup sets the group's description, avatar URL or announcement
// mode (only the owner and admins send). Owner and admins.
func (c *Client) UpdateGroup(ctx context.Context, conv string, u GroupUpdate) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpConvUpdate, Conv: conv, Description: u.Description, AvatarURL: u.AvatarURL, Announce: u.Announce}, true, nil)
}

// AddAdmins makes members of conv admins. Owner only.
func (c *Client) AddAdmins(ctx context.Context, conv string, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpAdminsAdd, Conv: conv, Users: users}, true, nil)
}

// RemoveAdmins makes admins of conv plain members. Owner only.
func (c *Client) RemoveAdmins(ctx context.Context, conv string, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpAdminsRemove, Conv: conv, Users: users}, true, nil)
}

// TransferOwner makes member to the owner of conv; the caller, the owner,
// becomes an admin.
func (c *Client) TransferOwner(ctx context.Context, conv, to string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpOwnerTransfer, Conv: conv, To: to}, true, nil)
}

// Mute stops members of conv from sending for d (1 ms ..
// [protocol.MaxMuteMS]); muting again sets a new end. Owner and admins, on
// plain members.
func (c *Client) Mute(ctx context.Context, conv string, d time.Duration, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpMembersMute, Conv: conv, Users: users, DurationMS: uint64(d.Milliseconds())}, true, nil)
}

// Unmute ends the mutes of members of conv. Owner and admins.
func (c *Client) Unmute(ctx context.Context, conv string, users ...string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpMembersUnmute, Conv: conv, Users: users}, true, nil)
}

// Block blocks users: they cannot start or send in a direct conversation
// with you (forbidden, nothing stored) and see you offline; group messages
// are not filtered. It returns the users you block after it.
func (c *Client) Block(ctx context.Context, users ...string) ([]string, error) {
	var res protocol.BlockList
	err := c.call(ctx, protocol.Request{Op: protocol.OpBlock, Users: users}, true, &res)
	return res.Users, err
}

// Unblock ends your blocks of users and returns the users you block after
// it.
func (c *Client) Unblock(ctx context.Context, users ...string) ([]string, error) {
	var res protocol.BlockList
	err := c.call(ctx, protocol.Request{Op: protocol.OpUnblock, Users: users}, true, &res)
	return res.Users, err
}

// Blocks returns the users you block, sorted.
func (c *Client) Blocks(ctx context.Context) ([]string, error) {
	var res protocol.BlockList
	err := c.call(ctx, protocol.Request{Op: protocol.OpBlocksList}, true, &res)
	return res.Users, err
}

// ConvSettingsUpdate is what [Client.SetConvSettings] sets: the fields that
// are not nil.
type ConvSettingsUpdate struct {
	// MutedUntil mutes notifications until the time (zero unmutes).
	MutedUntil *time.Time
	Pinned     *bool
	Archived   *bool
	// Cleared hides the messages up to this seq from you on every device
	// ("clear history for me"; at most the head, never lowered).
	Cleared *uint64
}

// SetConvSettings sets your own settings of conv and returns them after
// the change. Your other devices get a conv event "settings"; conv.list
// ([Client.Conversations]) and sync carry them, and history and sync leave
// out what you cleared (the SDK moves past it).
func (c *Client) SetConvSettings(ctx context.Context, conv string, u ConvSettingsUpdate) (natter.ConvSettings, error) {
	req := protocol.Request{Op: protocol.OpConvSettings, Conv: conv, Pinned: u.Pinned, Archived: u.Archived, Cleared: u.Cleared}
	if u.MutedUntil != nil {
		ms := uint64(0)
		if !u.MutedUntil.IsZero() {
			ms = uint64(u.MutedUntil.UnixMilli())
		}
		req.MutedUntil = &ms
	}
	var res natter.ConvSettings
	err := c.call(ctx, req, true, &res)
	return res, err
}
