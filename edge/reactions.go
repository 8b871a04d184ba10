package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Reactions (docs/protocol.md "react"): not entries of the log (a reaction
// takes no seq and counts as nothing unread) but two small writes to the
// ACTIONS bucket (jetstream/actions), then a reaction push to every
// member's delivery subject, as typing (in conversations of at most
// Config.TypingMaxMembers members: the edge tier may not publish the
// groups' broadcast, and a publish per member of a larger group per
// reaction is not worth it; pages carry the counts) and one event on
// EVENTS. A request that changes nothing
// (an add of a reaction the user has, a remove of one they have not) is
// answered with the count and pushes nothing: retries are safe.

// registerReactionsREST adds PUT (add) and DELETE (remove) of
// /v1/conversations/{conv}/messages/{ref}/reactions/{emoji} (the emoji
// path-escaped).
func (e *Edge) registerReactionsREST(g fiber.Router) {
	build := func(remove bool) func(*fiber.Ctx) (*protocol.Request, error) {
		return func(c *fiber.Ctx) (*protocol.Request, error) {
			emoji, err := url.PathUnescape(c.Params("emoji"))
			if err != nil {
				return nil, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "emoji: not a path-escaped string"}
			}
			return &protocol.Request{Op: protocol.OpReact, Conv: c.Params("conv"), Ref: c.Params("ref"), Emoji: emoji, Remove: remove}, nil
		}
	}
	g.Put("/:conv/messages/:ref/reactions/:emoji", e.restHandler(build(false), fiber.StatusOK))
	g.Delete("/:conv/messages/:ref/reactions/:emoji", e.restHandler(build(true), fiber.StatusOK))
}

// react runs react.
func (e *Edge) react(ctx context.Context, user string, r *protocol.Request) (any, error) {
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
	if rec.Deleted {
		return nil, &protocol.Error{Code: protocol.CodeConflict, Msg: "ref: " + r.Ref + " is deleted"}
	}
	add := !r.Remove
	changed, count, rev, err := e.acts.React(ctx, target, user, r.Emoji, add)
	if errors.Is(err, actions.ErrTooManyReactions) {
		return nil, &protocol.Error{Code: protocol.CodeTooMany, Msg: "emoji: " + r.Ref + " has " + strconv.Itoa(actions.MaxReactions) + " distinct reactions, the most a message may have"}
	}
	if err != nil {
		return nil, err
	}
	if changed {
		e.pushReaction(ctx, protocol.ReactionFrame{Conv: r.Conv, Ref: r.Ref, Seq: target.Seq, User: user, Emoji: r.Emoji, Removed: r.Remove, Count: count}, rev)
	}
	return protocol.ReactResult{Count: count, Mine: add}, nil
}

// reactionHeader marks a reaction signal on a delivery subject (shared:
// never changed).
var reactionHeader = nats.Header{delivery.SignalHeader: []string{delivery.SignalReaction}}

// pushReaction sends f to every member's connections and publishes its
// event. Both are best effort: a lost push is made up by the next page the
// client reads (pages carry the counts); a lost event is logged.
func (e *Edge) pushReaction(ctx context.Context, f protocol.ReactionFrame, rev uint64) {
	if members, err := e.members.Members(ctx, f.Conv); err != nil {
		e.log.Warn("reaction push: members not read", "conv", f.Conv, "err", err)
	} else if len(members) <= e.cfg.TypingMaxMembers {
		frame := protocol.ReactionPush(f)
		for _, u := range members {
			if err := e.nc.PublishMsg(&nats.Msg{Subject: subjects.Deliver(u), Header: reactionHeader, Data: frame}); err != nil {
				e.log.Warn("reaction push not published", "conv", f.Conv, "err", err)
				break
			}
		}
	}
	kind := natter.EventReactionAdded
	if f.Removed {
		kind = natter.EventReactionRemoved
	}
	data, err := json.Marshal(natter.EventReaction{Ref: f.Ref, Seq: f.Seq, User: f.User, Emoji: f.Emoji, Count: f.Count})
	if err != nil {
		return
	}
	// The id names the change: the revision of the user's key it wrote.
	ev := natter.Event{ID: "react:" + f.Conv + ":" + strconv.FormatUint(f.Seq, 10) + ":" + f.User + ":" + strconv.FormatUint(rev, 10),
		Kind: kind, Conv: f.Conv, TS: e.now().UnixMilli(), Actor: f.User, Data: data}
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	m := nats.NewMsg(subjects.Event(kind, f.Conv))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := e.js.PublishMsg(ctx, m, jetstream.WithExpectStream(subjects.StreamEvents)); err != nil {
		e.log.Warn("reaction event not published", "conv", f.Conv, "id", ev.ID, "err", err)
	}
}
