package edge

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
)

// Edits and deletes from clients (docs/protocol.md "Edits and deletes"):
// each is an entry of the conversation's log (type edit or delete, ref),
// appended like a send (cmid: idempotent), then applied to the ACTIONS
// bucket, which history and sync apply to their pages.

// refWindow is how many of the newest log entries target searches before
// it asks the archive: an edit usually follows its message closely.
const refWindow = 200

// registerActionsREST adds PATCH (msg.edit: {"cmid","body"}) and DELETE
// (msg.delete: the cmid in ?cmid= or Idempotency-Key) of
// /v1/conversations/{conv}/messages/{ref}.
func (e *Edge) registerActionsREST(g fiber.Router) {
	g.Patch("/:conv/messages/:ref", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{}
		if err := bodyInto(c, r); err != nil {
			return nil, err
		}
		r.Op, r.Conv, r.Ref = protocol.OpMsgEdit, c.Params("conv"), c.Params("ref")
		return r, idempotencyKey(c, r)
	}, fiber.StatusCreated))
	g.Delete("/:conv/messages/:ref", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{Op: protocol.OpMsgDelete, Conv: c.Params("conv"), Ref: c.Params("ref"), Cmid: c.Query("cmid")}
		return r, idempotencyKey(c, r)
	}, fiber.StatusCreated))
}

// msgAction runs msg.edit and msg.delete.
func (e *Edge) msgAction(ctx context.Context, user string, r *protocol.Request) (any, error) {
	edit := r.Op == protocol.OpMsgEdit
	if edit {
		if err := protocol.CheckBody(r.Body, e.cfg.MaxBody); err != nil {
			return nil, err
		}
	}
	if err := e.member(ctx, user, r.Conv); err != nil {
		return nil, err
	}
	target, err := e.target(ctx, r.Conv, r.Ref)
	if err != nil {
		return nil, err
	}
	rec, _, err := e.acts.Get(ctx, r.Conv, target.Seq)
	if err != nil {
		return nil, err
	}
	self := msglog.MessageID(r.Conv, user, r.Cmid)
	if rec.Deleted && rec.DeletedBy != self {
		return nil, &protocol.Error{Code: protocol.CodeConflict, Msg: "ref: " + r.Ref + " is deleted"}
	}
	if err := e.mayAct(ctx, user, target, edit); err != nil {
		return nil, err
	}
	s := msglog.Send{Conv: r.Conv, From: user, Cmid: r.Cmid, Ref: r.Ref}
	if edit {
		if len(rec.Edits) >= actions.MaxEdits && !hasEdit(rec.Edits, self) {
			return nil, &protocol.Error{Code: protocol.CodeTooMany, Msg: "ref: " + r.Ref + " was edited " + strconv.Itoa(actions.MaxEdits) + " times, the most a message may be"}
		}
		s.Type, s.Body = natter.TypeEdit, r.Body
	} else {
		s.Type = natter.TypeDelete
	}
	ack, err := e.msgs.Append(ctx, s)
	if err != nil {
		return nil, err
	}
	entry := natter.Message{ID: ack.ID, Conv: r.Conv, Seq: ack.Seq, From: user, Cmid: r.Cmid, Type: s.Type, Body: s.Body, Ref: r.Ref, TS: ack.TS}
	if ack.Dup {
		// The entry is the first attempt's (its body may differ from this
		// retry's): the persist role applies it from the log.
		return ack, nil
	}
	// Applied before the reply, so that the sender's next read shows it;
	// the persist role applies it again from the log (idempotent), which
	// also covers an edge that fails here.
	if err := e.acts.Apply(ctx, target, entry); err != nil {
		e.log.Warn("msg action not applied, left to the persist role", "conv", r.Conv, "ref", r.Ref, "err", err)
	}
	return ack, nil
}

func hasEdit(refs []actions.EntryRef, id string) bool {
	for _, r := range refs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// mayAct answers forbidden unless user may edit (edit) or delete target:
// their own message within the edit or delete window, or (delete only) any
// message of a group where they may delete others' messages (its owner and
// admins: convapi.Permit, the roles table of docs/protocol.md).
func (e *Edge) mayAct(ctx context.Context, user string, target natter.Message, edit bool) error {
	what, window := "delete", e.cfg.DeleteWindow
	if edit {
		what, window = "edit", e.cfg.EditWindow
	}
	if target.From != user {
		if !edit {
			return e.moderates(ctx, user, target)
		}
		return &protocol.Error{Code: protocol.CodeForbidden, Msg: "ref: " + target.ID + " was sent by " + target.From + ": you may edit only your own messages"}
	}
	if age := e.now().Sub(time.UnixMilli(target.TS)); age > window {
		// The owner and admins delete without a window, their own
		// messages too.
		if !edit && natter.IsGroupID(target.Conv) && e.moderates(ctx, user, target) == nil {
			return nil
		}
		return &protocol.Error{Code: protocol.CodeForbidden, Msg: "ref: the " + what + " window of " + window.String() + " has passed: " + target.ID + " was sent " + age.Truncate(time.Second).String() + " ago"}
	}
	return nil
}

// moderates answers nil when user may delete target, a message of another
// user (or of their own past the window), by their role in its group: the
// one place that decides it, with the roles of the member cache
// (convapi.MemberSet.Permit, no request).
func (e *Edge) moderates(ctx context.Context, user string, target natter.Message) error {
	set, err := e.members.Set(ctx, target.Conv)
	if err != nil {
		return err
	}
	return set.Permit(target.Conv, user, convapi.ActDeleteMessage, target.From)
}

func (e *Edge) now() time.Time {
	if e.cfg.Now != nil {
		return e.cfg.Now()
	}
	return time.Now()
}

// target finds the message ref of conv that an edit or delete names:
// among the newest entries of the hot tier, else in the archive. An
// unknown ref is not_found; an edit or delete entry is bad_frame.
func (e *Edge) target(ctx context.Context, conv, ref string) (natter.Message, error) {
	recent, err := e.msgs.Before(ctx, conv, 0, refWindow)
	if err != nil && !errors.Is(err, msglog.ErrTrimmed) {
		return natter.Message{}, err
	}
	for i := len(recent) - 1; i >= 0; i-- {
		if recent[i].ID == ref {
			return checkTarget(recent[i])
		}
	}
	m, err := e.convs.Message(ctx, conv, ref)
	if errors.Is(err, convapi.ErrNotFound) {
		return m, &protocol.Error{Code: protocol.CodeNotFound, Msg: "ref: no message " + ref + " in " + conv}
	}
	if err != nil {
		return m, err
	}
	return checkTarget(m)
}

func checkTarget(m natter.Message) (natter.Message, error) {
	if m.IsEdit() || m.IsDelete() {
		return m, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "ref: " + m.ID + " is an " + m.Type + " entry, not a message"}
	}
	return m, nil
}

// decorate applies the ACTIONS records of conv to msgs (oldest first,
// consecutive seqs or not), for user (whose reactions are Mine).
func (e *Edge) decorate(ctx context.Context, user, conv string, msgs []natter.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p, err := e.acts.Page(ctx, conv, msgs[0].Seq, msgs[len(msgs)-1].Seq, user)
	if err != nil {
		return err
	}
	p.Decorate(msgs)
	return nil
}

// decorateRaw applies the ACTIONS records of conv to entries, the log
// entries with the seqs first, first+1, ... as stored: an entry with a
// record is decoded, changed and encoded again; the others stay as they are.
func (e *Edge) decorateRaw(ctx context.Context, user, conv string, first uint64, entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	p, err := e.acts.Page(ctx, conv, first, first+uint64(len(entries))-1, user)
	if err != nil || p.Len() == 0 {
		return err
	}
	for i, b := range entries {
		if _, ok := p.Record(first + uint64(i)); !ok {
			continue
		}
		m, err := msglog.Decode(b, nil)
		if err != nil {
			return err
		}
		if p.Apply(&m) {
			if entries[i], err = json.Marshal(m); err != nil {
				return err
			}
		}
	}
	return nil
}
