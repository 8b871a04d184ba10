package edge

import (
	"context"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
)

// mayPost checks a send of user in conv: a member (not_member otherwise),
// not muted, and an admin or the owner when the group is in announcement
// mode (forbidden otherwise). It reads the member cache only (the members
// and the group's moderation are loaded together, and dropped together by
// the change notice every moderation change publishes): no request per
// message.
func (e *Edge) mayPost(ctx context.Context, user, conv string, now time.Time) error {
	set, err := e.members.Set(ctx, conv)
	if err != nil {
		return err
	}
	if !set.Has(user) {
		return &protocol.Error{Code: protocol.CodeNotMember, Msg: "not a member of conversation " + conv}
	}
	kind := natter.KindDirect
	if natter.IsGroupID(conv) {
		kind = natter.KindGroup
	}
	return set.Mod().CanSend(kind, user, now.UnixMilli())
}

// moderate runs the moderation ops (conv.update, admins.*, owner.transfer,
// members.mute, members.unmute) through the conversations service, which
// decides with convapi.Permit.
func (e *Edge) moderate(ctx context.Context, user string, r *protocol.Request) (any, error) {
	req := convapi.ModerateRequest{User: user, Conv: r.Conv, Users: r.Users, To: r.To}
	switch r.Op {
	case protocol.OpConvUpdate:
		req.Action, req.Description, req.AvatarURL, req.Announce = convapi.ModUpdate, r.Description, r.AvatarURL, r.Announce
	case protocol.OpAdminsAdd:
		req.Action = convapi.ModAdminsAdd
	case protocol.OpAdminsRemove:
		req.Action = convapi.ModAdminsRemove
	case protocol.OpOwnerTransfer:
		req.Action = convapi.ModTransfer
	case protocol.OpMembersMute:
		req.Action, req.DurationMS = convapi.ModMute, int64(r.DurationMS)
	case protocol.OpMembersUnmute:
		req.Action = convapi.ModUnmute
	}
	return struct{}{}, e.changed(e.convs.Moderate(ctx, req), r.Conv)
}
