package client

import (
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/jsonstr"
)

// encodeRequest encodes req as a frame: a plain send (no mentions, no
// attachments; the frame of every message the relay sends) by hand, the
// bytes encoding/json would make of it, anything else with
// [protocol.Request.Encode]. The caller has validated a send.
func encodeRequest(req *protocol.Request) ([]byte, error) {
	if req.Op != protocol.OpSend || !plainSend(req) {
		return req.Encode()
	}
	b := make([]byte, 0, 64+len(req.Conv)+len(req.Cmid)+len(req.Body)+len(req.Type)+len(req.ReplyTo)+len(req.Thread))
	b = append(b, `{"op":"send","id":`...)
	b = jsonstr.Append(b, req.ID, true)
	b = appendField(b, `,"conv":`, req.Conv)
	b = appendField(b, `,"cmid":`, req.Cmid)
	b = appendField(b, `,"body":`, req.Body)
	b = appendField(b, `,"type":`, req.Type)
	if req.First {
		b = append(b, `,"first":true`...)
	}
	b = appendField(b, `,"reply_to":`, req.ReplyTo)
	b = appendField(b, `,"thread":`, req.Thread)
	return append(b, '}'), nil
}

// plainSend reports whether req has no field besides those encodeRequest
// writes (a send built by Send or SendAll never has).
func plainSend(r *protocol.Request) bool {
	return r.Mentions == nil && r.Attachments == nil && r.Token == "" && r.Device == "" && r.From == "" && r.Seq == 0 && r.Cursors == nil &&
		r.Limit == 0 && r.Before == nil && r.After == nil && r.PageSize == 0 && r.Page == "" && r.Kind == "" &&
		r.With == "" && r.Name == "" && r.Members == nil && r.Users == nil && !r.Hidden && r.State == "" &&
		r.AfterUser == "" && r.Ref == "" && r.Root == "" && r.Emoji == "" && !r.Remove && r.Description == nil &&
		r.AvatarURL == nil && r.Announce == nil && r.To == "" && r.DurationMS == 0 && r.MutedUntil == nil &&
		r.Pinned == nil && r.Archived == nil && r.Cleared == nil && r.Provider == "" && r.Subscription == nil
}

// appendField appends key and s unless s is empty (omitempty).
func appendField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonstr.Append(append(b, key...), s, true)
}
