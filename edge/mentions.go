package edge

import (
	"context"
	"strconv"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
)

// checkMentions checks the mentions of user's send to conv against the
// member cache (no request per message): every mentioned user is a member
// (bad_frame naming them otherwise), and natter.MentionAll is for a group's
// owner and admins (forbidden otherwise, as convapi.Permit decides). The
// form (count, ids, duplicates) is protocol.Request.Check's.
func (e *Edge) checkMentions(ctx context.Context, user, conv string, mentions []string) error {
	set, err := e.members.Set(ctx, conv)
	if err != nil {
		return err
	}
	for i, u := range mentions {
		if u == natter.MentionAll {
			if err := set.Permit(conv, user, convapi.ActMentionAll, ""); err != nil {
				return err
			}
			continue
		}
		if !set.Has(u) {
			return &protocol.Error{Code: protocol.CodeBadFrame, Msg: "mentions[" + strconv.Itoa(i) + "]: " + u + " is not a member"}
		}
	}
	return nil
}
