package edge

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// A user's settings of a conversation (docs/protocol.md, "conv.settings")
// are a key of the SETTINGS bucket (jetstream/settings), written here with
// a compare-and-set and pushed to every device of the user as a conv push
// "settings" on the user's delivery subject (the edges holding the user's
// sockets queue it as it is). conv.list and sync pages read a page's
// settings in one batched read beside the cursors; history reads the one
// key of its conversation, to leave out what the user cleared.

// settingsHeader marks a conv signal on a delivery subject (shared: never
// changed).
var settingsHeader = nats.Header{delivery.SignalHeader: []string{delivery.SignalConv}}

// convSettings answers conv.settings.
func (e *Edge) convSettings(ctx context.Context, user string, r *protocol.Request) (any, error) {
	if err := e.member(ctx, user, r.Conv); err != nil {
		return nil, err
	}
	if r.Cleared != nil && *r.Cleared > 0 {
		head, err := e.msgs.Head(ctx, r.Conv)
		if err != nil {
			return nil, err
		}
		if *r.Cleared > head {
			return nil, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "cleared: beyond the newest message (seq " + strconv.FormatUint(head, 10) + ")"}
		}
	}
	s, changed, err := e.settings.Update(ctx, user, r.Conv, func(s *natter.ConvSettings) {
		if r.MutedUntil != nil {
			s.MutedUntil = int64(*r.MutedUntil)
		}
		if r.Pinned != nil {
			s.Pinned = *r.Pinned
		}
		if r.Archived != nil {
			s.Archived = *r.Archived
		}
		if r.Cleared != nil {
			s.Cleared = max(s.Cleared, *r.Cleared) // never back
		}
	})
	if err != nil {
		return nil, err
	}
	if changed {
		frame := protocol.ConvPush(protocol.ConvFrame{Conv: r.Conv, Event: protocol.ConvSettings, By: user, Settings: &s})
		if err := e.nc.PublishMsg(&nats.Msg{Subject: subjects.Deliver(user), Header: settingsHeader, Data: frame}); err != nil {
			e.log.Warn("settings push not published: the user's other devices learn by sync", "user", user, "err", err)
		}
	}
	return s, nil
}

// cleared is the seq up to which user cleared conv (0: none).
func (e *Edge) cleared(ctx context.Context, user, conv string) (uint64, error) {
	s, err := e.settings.One(ctx, user, conv)
	return s.Cleared, err
}

// dropCleared drops the messages up to cleared.
func dropCleared(msgs []natter.Message, cleared uint64) []natter.Message {
	if cleared == 0 {
		return msgs
	}
	i := 0
	for i < len(msgs) && msgs[i].Seq <= cleared {
		i++
	}
	return msgs[i:]
}

// settingsOf returns a pointer to s, or nil for the default settings.
func settingsOf(s natter.ConvSettings, ok bool) *natter.ConvSettings {
	if !ok || s.IsZero() {
		return nil
	}
	return &s
}

// historyCleared is a history page for a user who cleared conv up to
// cleared: the messages up to it are left out, and a page that reaches
// them says no more older ones.
func (e *Edge) historyCleared(ctx context.Context, user string, r *protocol.Request, cleared uint64) (any, error) {
	if r.After != nil {
		q := *r
		q.After = protocol.Seq(max(*r.After, cleared))
		return e.historyPage(ctx, user, &q)
	}
	if r.Before != nil && *r.Before <= cleared+1 {
		return protocol.HistoryResult{Msgs: []natter.Message{}}, nil
	}
	res, err := e.historyPage(ctx, user, r)
	if err != nil {
		return nil, err
	}
	var msgs []natter.Message
	var more bool
	switch p := res.(type) {
	case protocol.HistoryResult:
		msgs, more = p.Msgs, p.More
	case protocol.HistoryPage:
		msgs, more = make([]natter.Message, len(p.Msgs)), p.More
		for i, b := range p.Msgs {
			if msgs[i], err = msglog.Decode(b, nil); err != nil {
				return nil, err
			}
		}
	default:
		return res, nil
	}
	kept := dropCleared(msgs, cleared)
	if len(kept) < len(msgs) || (len(kept) > 0 && kept[0].Seq <= cleared+1) {
		more = false
	}
	if kept == nil {
		kept = []natter.Message{}
	}
	return protocol.HistoryResult{Msgs: kept, More: more}, nil
}
