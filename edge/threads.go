package edge

import (
	"context"

	"github.com/gofiber/fiber/v2"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// Replies and threads (docs/protocol.md "Replies and threads"): a send's
// reply_to and thread name a message of the same conversation, found as
// msg.edit finds its ref (target: the newest log entries, else the
// archive); a thread reply is recorded in the root's ACTIONS keys
// (actions.AddReply), which history and sync read with the page's other
// records and the thread op reads for its page.

// threadGap is the widest gap between two replies of a thread page that
// one read spans: a thread interleaved with a few other messages is read
// in one go, a sparse one reply by reply.
const threadGap = 8

// registerThreadsREST adds GET /v1/conversations/{conv}/threads/{root}
// (?before=, ?after=, ?limit=): the thread op.
func (e *Edge) registerThreadsREST(g fiber.Router) {
	g.Get("/:conv/threads/:root", e.restHandler(func(c *fiber.Ctx) (*protocol.Request, error) {
		r := &protocol.Request{Op: protocol.OpThread, Conv: c.Params("conv"), Root: c.Params("root")}
		var err error
		if r.Before, err = queryUint(c, "before"); err != nil {
			return nil, err
		}
		if r.After, err = queryUint(c, "after"); err != nil {
			return nil, err
		}
		l, err := queryUint(c, "limit")
		if l != nil {
			r.Limit = int(min(*l, 1<<20))
		}
		return r, err
	}, fiber.StatusOK))
}

// replyRefs checks the reply_to and thread of a send to conv (the member
// check done): each must name a message of conv that is not an edit or
// delete entry (not_found, bad_frame), and a thread's root must not be a
// reply in a thread itself (bad_frame). It returns the root (zero without
// a thread).
func (e *Edge) replyRefs(ctx context.Context, conv string, r *protocol.Request) (natter.Message, error) {
	if r.ReplyTo != "" && r.ReplyTo != r.Thread { // (a reply to the root: one lookup)
		if _, err := e.target(ctx, conv, r.ReplyTo); err != nil {
			return natter.Message{}, fieldErr("reply_to", err)
		}
	}
	if r.Thread == "" {
		return natter.Message{}, nil
	}
	root, err := e.target(ctx, conv, r.Thread)
	if err != nil {
		return root, fieldErr("thread", err)
	}
	if root.Thread != "" {
		return root, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "thread: " + root.ID + " is a reply in the thread of " + root.Thread + ": name that root"}
	}
	return root, nil
}

// fieldErr renames the "ref: " of target's errors to field.
func fieldErr(field string, err error) error {
	if pe, ok := err.(*protocol.Error); ok && len(pe.Msg) > 5 && pe.Msg[:5] == "ref: " {
		return &protocol.Error{Code: pe.Code, Msg: field + ": " + pe.Msg[5:]}
	}
	return err
}

// addReply records the accepted reply (ack) in root's thread; a failure is
// logged (the message is stored; its thread entry is missing until a
// retry of the send records it).
func (e *Edge) addReply(ctx context.Context, root natter.Message, user string, r *protocol.Request, ack natter.Ack) {
	reply := natter.Message{ID: ack.ID, Conv: r.Conv, Seq: ack.Seq, From: user, Cmid: r.Cmid, Thread: root.ID, TS: ack.TS}
	if err := e.acts.AddReply(ctx, root, reply); err != nil {
		e.log.Warn("thread reply not recorded", "conv", r.Conv, "root", root.ID, "seq", ack.Seq, "err", err)
	}
}

// thread is a page of the replies in the thread of r.Root, oldest first:
// the reply seqs from the root's chunk keys, the messages read by seq
// range (hot tier, else archive) as history reads them, decorated.
func (e *Edge) thread(ctx context.Context, user string, r *protocol.Request) (any, error) {
	if err := e.member(ctx, user, r.Conv); err != nil {
		return nil, err
	}
	root, err := e.target(ctx, r.Conv, r.Root)
	if err != nil {
		return nil, fieldErr("root", err)
	}
	seqs, err := e.acts.ThreadSeqs(ctx, r.Conv, root.Seq)
	if err != nil {
		return nil, err
	}
	cleared, err := e.cleared(ctx, user, r.Conv)
	if err != nil {
		return nil, err
	}
	lo := 0
	for lo < len(seqs) && seqs[lo] <= cleared {
		lo++
	}
	seqs = seqs[lo:]
	limit := r.LimitOrDefault()
	more := false
	switch {
	case r.After != nil:
		i := 0
		for i < len(seqs) && seqs[i] <= *r.After {
			i++
		}
		seqs = seqs[i:]
		if len(seqs) > limit {
			seqs, more = seqs[:limit], true
		}
	default:
		if r.Before != nil {
			j := len(seqs)
			for j > 0 && seqs[j-1] >= *r.Before {
				j--
			}
			seqs = seqs[:j]
		}
		if len(seqs) > limit {
			seqs, more = seqs[len(seqs)-limit:], true
		}
	}
	msgs := make([]natter.Message, 0, len(seqs))
	for i := 0; i < len(seqs); {
		// One read per run of replies at most threadGap apart (the
		// messages between them are read and dropped), of at most
		// protocol.MaxHistoryLimit seqs.
		j := i + 1
		for j < len(seqs) && seqs[j]-seqs[j-1] <= threadGap && seqs[j]-seqs[i] < protocol.MaxHistoryLimit {
			j++
		}
		run, _, _, err := e.after(ctx, user, r.Conv, seqs[i]-1, int(seqs[j-1]-seqs[i])+1)
		if err != nil {
			return nil, err
		}
		for _, m := range run {
			if m.Thread == root.ID {
				msgs = append(msgs, m)
			}
		}
		i = j
	}
	return protocol.HistoryResult{Msgs: msgs, More: more}, nil
}
