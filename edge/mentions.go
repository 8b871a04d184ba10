package edge

import (
	"context"
	"strconv"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
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

// recordMentions records the accepted message (ack) in the mention keys of
// its mentioned users (not the sender) and of @all, which sync and
// conv.list count; a failure is logged (the message is stored; the count
// misses it until a retry of the send records it).
func (e *Edge) recordMentions(ctx context.Context, user, conv string, mentions []string, seq uint64) {
	for _, u := range mentions {
		key := subjects.ActionsMentionKey(conv, u)
		if u == natter.MentionAll {
			key = subjects.ActionsMentionAllKey(conv)
		} else if u == user {
			continue
		}
		if err := e.acts.AddMention(ctx, key, seq); err != nil {
			e.log.Warn("mention not recorded", "conv", conv, "seq", seq, "err", err)
		}
	}
}

// mentionSeqs reads the mention keys of user in convs (theirs and, in
// groups, @all's) with one batched read per 1,024 keys.
func (e *Edge) mentionSeqs(ctx context.Context, user string, convs []string) (map[string][]uint64, error) {
	keys := make([]string, 0, 2*len(convs))
	for _, c := range convs {
		keys = append(keys, subjects.ActionsMentionKey(c, user))
		if natter.IsGroupID(c) {
			keys = append(keys, subjects.ActionsMentionAllKey(c))
		}
	}
	return e.acts.MentionSeqs(ctx, keys)
}

// mentionCount is how many of the mentions of user in conv (from
// mentionSeqs) are after read.
func mentionCount(seqs map[string][]uint64, user, conv string, read uint64) uint64 {
	return actions.MentionCount(seqs[subjects.ActionsMentionKey(conv, user)], read) +
		actions.MentionCount(seqs[subjects.ActionsMentionAllKey(conv)], read)
}
