package edge

import (
	"context"
	"errors"
	"slices"
	"strconv"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/msglog"
)

// sendAttachments checks the attachments of a send by user to conv and
// records the send on them, before the message is appended: each must be
// an upload of user's (one direct get of its metadata each); a message
// referencing another user's upload is forbidden and nothing is recorded.
// It returns the attachments as the message carries them, their metadata
// filled in from the uploads. Recording is idempotent (a retried send
// records nothing new).
func (e *Edge) sendAttachments(ctx context.Context, user, conv, cmid string, refs []natter.Attachment) ([]natter.Attachment, error) {
	out := make([]natter.Attachment, len(refs))
	for i, ref := range refs {
		m, _, err := e.attMeta.Get(ctx, ref.ID)
		if errors.Is(err, attachments.ErrNotFound) {
			return nil, &protocol.Error{Code: protocol.CodeNotFound, Msg: "attachments[" + strconv.Itoa(i) + "]: " + ref.ID + ": no such attachment (expired or deleted?)"}
		}
		if err != nil {
			return nil, err
		}
		if m.Owner != user {
			return nil, &protocol.Error{Code: protocol.CodeForbidden, Msg: "attachments[" + strconv.Itoa(i) + "]: " + ref.ID + " was not uploaded by you"}
		}
		out[i] = m.Attachment()
		if ref.Name != "" {
			out[i].Name = ref.Name
		}
	}
	msgID := msglog.MessageID(conv, user, cmid)
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.ID
		if _, err := e.attMeta.Update(ctx, a.ID, func(m *attachments.Meta) (bool, error) {
			changed := false
			if !slices.Contains(m.Convs, conv) {
				m.Convs, changed = append(m.Convs, conv), true
			}
			if !slices.Contains(m.Msgs, msgID) {
				m.Msgs, changed = append(m.Msgs, msgID), true
			}
			return changed, nil
		}); err != nil {
			if errors.Is(err, attachments.ErrNotFound) {
				return nil, &protocol.Error{Code: protocol.CodeNotFound, Msg: "attachments[" + strconv.Itoa(i) + "]: " + a.ID + ": no such attachment (expired or deleted?)"}
			}
			return nil, err
		}
	}
	if err := e.attMeta.AddMsg(ctx, msgID, ids); err != nil {
		return nil, err
	}
	return out, nil
}
