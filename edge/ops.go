package edge

import (
	"context"
	"errors"
	"github.com/natter-im/natter/jetstream/convapi"
	"strconv"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/tracing"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// do runs one validated request for user on device and returns the reply
// data. WebSocket sessions and REST handlers both come here, so both get the
// same checks and the same errors.
func (e *Edge) do(ctx context.Context, user, device string, r *protocol.Request) (any, error) {
	switch r.Op {
	case protocol.OpSend:
		return e.send(ctx, user, r)
	case protocol.OpAck:
		return e.ack(ctx, user, device, r)
	case protocol.OpSync:
		return e.sync(ctx, user, device, r)
	case protocol.OpHistory:
		return e.history(ctx, user, r)
	case protocol.OpConvCreate:
		c, err := e.convs.Create(ctx, convapi.CreateRequest{User: user, Kind: r.Kind, With: r.With, Name: r.Name, Members: r.Members})
		if err == nil {
			e.members.Invalidate(c.ID) // cached as unknown by an earlier request
		}
		return c, err
	case protocol.OpConvList:
		return e.convList(ctx, user, r)
	case protocol.OpConvGet:
		c, err := e.convs.Get(ctx, user, r.Conv)
		if err != nil {
			return nil, err
		}
		c.Head, err = e.msgs.Head(ctx, r.Conv)
		return c, err
	case protocol.OpConvRename:
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		return struct{}{}, e.convs.Rename(ctx, user, r.Conv, r.Name)
	case protocol.OpMembersAdd:
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		return struct{}{}, e.changed(e.convs.AddMembers(ctx, user, r.Conv, r.Users), r.Conv)
	case protocol.OpMembersRemove:
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		return struct{}{}, e.changed(e.convs.RemoveMembers(ctx, user, r.Conv, r.Users), r.Conv)
	case protocol.OpMembersList:
		m, err := e.convs.MembersList(ctx, user, r.Conv)
		return protocol.MemberList{Members: m}, err
	case protocol.OpRead:
		return struct{}{}, e.convs.SetRead(ctx, user, r.Conv, r.Seq)
	case protocol.OpReceipts:
		return e.receipts(ctx, user, r)
	case protocol.OpPing:
		return protocol.Pong{TS: time.Now().UnixMilli()}, nil
	case protocol.OpPresenceSet:
		return e.presenceSet(ctx, user, r.Hidden)
	case protocol.OpMsgEdit, protocol.OpMsgDelete:
		// Entries of the log like sends: refused in a frozen
		// conversation, and taken from the user's message rate.
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		if err := e.takeMessage(user); err != nil {
			return nil, err
		}
		return e.msgAction(ctx, user, r)
	case protocol.OpReact:
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		return e.react(ctx, user, r)
	case protocol.OpThread:
		return e.thread(ctx, user, r)
	case protocol.OpConvUpdate, protocol.OpAdminsAdd, protocol.OpAdminsRemove, protocol.OpOwnerTransfer,
		protocol.OpMembersMute, protocol.OpMembersUnmute:
		if err := e.frozen(r.Conv); err != nil {
			return nil, err
		}
		return e.moderate(ctx, user, r)
	case protocol.OpBlock:
		u, err := e.convs.Block(ctx, user, r.Users)
		return protocol.BlockList{Users: u}, e.changed(err, directsOf(user, r.Users)...)
	case protocol.OpUnblock:
		u, err := e.convs.Unblock(ctx, user, r.Users)
		return protocol.BlockList{Users: u}, e.changed(err, directsOf(user, r.Users)...)
	case protocol.OpConvSettings:
		return e.convSettings(ctx, user, r)
	case protocol.OpBlocksList:
		u, err := e.convs.Blocks(ctx, user)
		return protocol.BlockList{Users: u}, err
	case protocol.OpPushRegister:
		return e.pushRegister(ctx, user, device, r)
	case protocol.OpPushUnregister:
		return struct{}{}, e.pushes.Delete(ctx, user, device)
	}
	return nil, &protocol.Error{ID: r.ID, Code: protocol.CodeUnknownOp, Msg: "unknown op " + strconv.Quote(r.Op)}
}

// changed drops convs from the member cache after a change this edge made
// through the conversations service (members, moderation, blocks), so that
// the next request here sees it: the service's change notice reaches the
// edge on another NATS connection than its reply and may come later
// (other edges wait for the notice, docs/protocol.md). It returns err.
func (e *Edge) changed(err error, convs ...string) error {
	for _, c := range convs {
		e.members.Invalidate(c)
	}
	return err
}

// directsOf returns the ids of user's direct conversations with users.
func directsOf(user string, users []string) []string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		if u != user && subjects.ValidID(u) == nil {
			out = append(out, natter.DirectID(user, u))
		}
	}
	return out
}

// member answers not_member unless user is in conv. An unknown conversation
// is not_member too, so that its existence does not leak.
func (e *Edge) member(ctx context.Context, user, conv string) error {
	ok, err := e.members.IsMember(ctx, conv, user)
	if err != nil {
		return err
	}
	if !ok {
		return &protocol.Error{Code: protocol.CodeNotMember, Msg: "not a member of conversation " + conv}
	}
	return nil
}

func (e *Edge) send(ctx context.Context, user string, r *protocol.Request) (any, error) {
	start := time.Now()
	if err := e.frozen(r.Conv); err != nil {
		e.m.sends.WithLabelValues("rejected").Inc()
		return nil, err
	}
	if err := e.takeMessage(user); err != nil {
		e.m.sends.WithLabelValues("rejected").Inc()
		return nil, err
	}
	if err := protocol.CheckBody(r.Body, e.cfg.MaxBody); err != nil {
		e.m.sends.WithLabelValues("rejected").Inc()
		return nil, err
	}
	if r.From != "" && r.From != user {
		e.m.sends.WithLabelValues("rejected").Inc()
		return nil, &protocol.Error{Code: protocol.CodeForbidden, Msg: "from " + strconv.Quote(r.From) + " is not the authenticated user " + strconv.Quote(user)}
	}
	if err := e.mayPost(ctx, user, r.Conv, start); err != nil {
		e.m.sends.WithLabelValues("rejected").Inc()
		return nil, err
	}
	if len(r.Mentions) > 0 {
		if err := e.checkMentions(ctx, user, r.Conv, r.Mentions); err != nil {
			e.m.sends.WithLabelValues("rejected").Inc()
			return nil, err
		}
	}
	var root natter.Message
	if r.ReplyTo != "" || r.Thread != "" {
		var err error
		if root, err = e.replyRefs(ctx, r.Conv, r); err != nil {
			e.m.sends.WithLabelValues("rejected").Inc()
			return nil, err
		}
	}
	var atts []natter.Attachment
	if len(r.Attachments) > 0 {
		var err error
		if atts, err = e.sendAttachments(ctx, user, r.Conv, r.Cmid, r.Attachments); err != nil {
			e.m.sends.WithLabelValues("rejected").Inc()
			return nil, err
		}
	}
	tctx, span := tracing.StartSend(ctx, start, e.cfg.EdgeID, r.Conv, user)
	ack, err := e.msgs.Append(tctx, msglog.Send{Conv: r.Conv, From: user, Cmid: r.Cmid, Type: r.Type, Body: r.Body, ReplyTo: r.ReplyTo, Thread: r.Thread, Mentions: r.Mentions, Attachments: atts, FirstAttempt: r.First})
	span.End(ack, err)
	if err != nil {
		e.m.sends.WithLabelValues("failed").Inc()
		return nil, err
	}
	if len(r.Mentions) > 0 {
		// Also on a retry (Dup), as addReply.
		e.recordMentions(ctx, user, r.Conv, r.Mentions, ack.Seq)
	}
	if root.ID != "" {
		// Also on a retry (Dup): recording is idempotent, and a first
		// attempt may have failed between the append and here.
		e.addReply(ctx, root, user, r, ack)
	}
	if ack.Dup {
		e.m.sendsDup.Inc()
	} else {
		e.m.sendsOK.Inc()
	}
	e.m.sendSeconds.Observe(time.Since(start).Seconds())
	return ack, nil
}

// ack records the device's delivered cursor (never moving it back).
func (e *Edge) ack(ctx context.Context, user, device string, r *protocol.Request) (any, error) {
	if err := e.member(ctx, user, r.Conv); err != nil {
		return nil, err
	}
	if _, err := e.curs.Raise(ctx, subjects.DeliveredKey(user, device, r.Conv), r.Seq); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// after reads messages with seq > cursor from the hot tier, filling from the
// MongoDB archive what was trimmed from it. floor is the retention floor
// the archive reported (0: not asked, or nothing removed): the messages
// start there when the cursor lay below it.
func (e *Edge) after(ctx context.Context, user, conv string, cursor uint64, limit int) (msgs []natter.Message, head, floor uint64, err error) {
	msgs, head, err = e.msgs.After(ctx, conv, cursor, limit)
	var te *msglog.TrimmedError
	if !errors.As(err, &te) {
		if err == nil {
			err = e.decorate(ctx, user, conv, msgs)
		}
		return msgs, head, 0, err
	}
	after := cursor
	page, err := e.convs.History(ctx, convapi.HistoryRequest{User: user, Conv: conv, After: &after, Before: te.Oldest, Limit: min(limit, convapi.MaxHistoryLimit)})
	if err != nil {
		return nil, head, 0, err
	}
	floor = page.Floor
	out := page.Msgs
	if n := len(out); n < limit && !page.More && (n == 0 || out[n-1].Seq == te.Oldest-1) {
		hot, h2, err := e.msgs.After(ctx, conv, te.Oldest-1, limit-n)
		if err != nil && !errors.Is(err, msglog.ErrTrimmed) {
			return nil, head, floor, err
		}
		out = append(out, hot...)
		head = max(head, h2)
	}
	return out, head, floor, e.decorate(ctx, user, conv, out)
}

func (e *Edge) history(ctx context.Context, user string, r *protocol.Request) (any, error) {
	if err := e.member(ctx, user, r.Conv); err != nil {
		return nil, err
	}
	cleared, err := e.cleared(ctx, user, r.Conv)
	if err != nil {
		return nil, err
	}
	if cleared > 0 {
		return e.historyCleared(ctx, user, r, cleared)
	}
	return e.historyPage(ctx, user, r)
}

// historyPage is a history page as the log and the archive have it.
func (e *Edge) historyPage(ctx context.Context, user string, r *protocol.Request) (any, error) {
	limit := r.LimitOrDefault()
	if r.After != nil {
		msgs, head, floor, err := e.after(ctx, user, r.Conv, *r.After, limit)
		if err != nil {
			return nil, err
		}
		last := *r.After
		if n := len(msgs); n > 0 {
			last = msgs[n-1].Seq
		}
		return protocol.HistoryResult{Msgs: msgs, More: last < head, Floor: floor}, nil
	}
	// The hot tier's entries go into the reply as stored (msglog checks
	// that they are this conversation's, in order).
	var bound uint64 // 0: the newest page (Validate refuses before 0)
	if r.Before != nil {
		bound = *r.Before
	}
	hot, err := e.msgs.BeforeRaw(ctx, r.Conv, bound, limit)
	var te *msglog.TrimmedError
	if errors.As(err, &te) {
		// The older part of the page is only in the archive.
		msgs := make([]natter.Message, len(hot.Entries))
		for i, b := range hot.Entries {
			if msgs[i], err = msglog.Decode(b, nil); err != nil {
				return nil, err
			}
		}
		need := limit - len(msgs)
		before := te.Oldest
		if bound > 0 && bound < before {
			before = bound
		}
		page, herr := e.convs.History(ctx, convapi.HistoryRequest{User: user, Conv: r.Conv, Before: before, Limit: min(need, convapi.MaxHistoryLimit)})
		if herr != nil {
			return nil, herr
		}
		msgs = append(page.Msgs, msgs...)
		if err := e.decorate(ctx, user, r.Conv, msgs); err != nil {
			return nil, err
		}
		return protocol.HistoryResult{Msgs: msgs, More: page.More, Floor: page.Floor}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := e.decorateRaw(ctx, user, r.Conv, hot.First, hot.Entries); err != nil {
		return nil, err
	}
	return protocol.HistoryPage{Msgs: hot.Entries, More: hot.First > 1}, nil
}

func isDup(res any) bool {
	a, ok := res.(natter.Ack)
	return ok && a.Dup
}
