package client

import (
	"context"
	"sync"

	"github.com/natter-im/natter/edge/protocol"
)

// ConvChanged is the event of a [Client.ConvEvents] item the client makes
// itself, not the edge: the conversation changed (renamed, members added
// or removed) while no push of it reached the client, typically while it
// was disconnected. Rev is the conversation's rev now; read its state with
// [Client.Conversation].
const ConvChanged = "changed"

// convRevs tracks the rev of every conversation the application has heard
// of, so that [Client.ConvEvents] carries no stale or repeated change and
// the client can tell, from the revs of a sync reply, what changed while it
// was away.
type convRevs struct {
	mu       sync.Mutex
	baseline bool              // a sync reply set the starting revs
	revs     map[string]int64  // newest rev seen per conversation
	gone     map[string]bool   // the user is no longer a member
	pushes   uint64            // conv pushes received so far
	pushed   map[string]uint64 // conversation -> pushes at its latest push
}

// Rename renames the group conv to name (1..[protocol.MaxName]
// characters). The group's owner and admins may; renaming to the current name changes
// nothing, so a retry is safe. Every member's devices get a renamed event
// on [Client.ConvEvents].
func (c *Client) Rename(ctx context.Context, conv, name string) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpConvRename, Conv: conv, Name: name}, true, nil)
}

// ConvEvents returns the channel of changes of the user's conversations:
// the edge's conv pushes ([protocol.ConvFrame]: added, with Created for a
// new conversation; removed; members_added and members_removed in a group
// the user is in; renamed) and, after every sync reply (so after every
// reconnect), the changes no push told: added for a conversation the user
// is in now, removed for one the user is no longer in, and [ConvChanged]
// for one whose rev moved. A push older than what the channel already told
// (a lower rev, pushes overtaking each other) is left out. The first sync
// after Dial sets the starting point and makes no event: read the
// conversations with [Client.Conversations].
//
// Best effort like [Client.PresenceEvents]: an event that finds the channel
// full (Config.EventBuffer) is dropped ([Stats].DroppedEvents); the next
// conv.list shows the state. It is closed when the client stops.
func (c *Client) ConvEvents() <-chan protocol.ConvFrame { return c.convEvents }

// onConv hands a conv push to the application unless it is stale.
func (c *Client) onConv(f protocol.ConvFrame) {
	if f.Event == protocol.ConvSettings && f.Settings != nil && f.Settings.Cleared > 0 {
		d := &c.d
		d.mu.Lock()
		if st := d.convs[f.Conv]; st != nil {
			c.skipCleared(st, f.Settings.Cleared)
			c.markDirty(f.Conv, st)
		}
		d.mu.Unlock()
	}
	r := &c.revs
	r.mu.Lock()
	r.pushes++
	r.pushed[f.Conv] = r.pushes
	have, known := r.revs[f.Conv]
	// A rev of 0 is a new conversation's (created) or from an older
	// server that sends none: those cannot be ordered and pass, but a
	// creation the client knows of already.
	stale := known && ((f.Rev != 0 && f.Rev <= have) || (f.Rev == 0 && f.Created))
	if !stale {
		r.revs[f.Conv] = max(have, f.Rev)
		r.gone[f.Conv] = f.Event == protocol.ConvRemoved
	}
	r.mu.Unlock()
	if stale {
		return
	}
	c.stats.convEvents.Add(1)
	c.sendConvEvent(f)
}

func (c *Client) sendConvEvent(f protocol.ConvFrame) {
	select {
	case c.convEvents <- f:
	default:
		c.stats.dropped.Add(1)
	}
}

// convEpoch returns the number of conv pushes received so far, to be taken
// before a sync request and given to applyConvs with its reply.
func (c *Client) convEpoch() uint64 {
	c.revs.mu.Lock()
	defer c.revs.mu.Unlock()
	return c.revs.pushes
}

// applyConvs compares a sync reply, which lists every conversation of the
// user with its rev (a page: those covers says it covers), with the revs
// the application was told, and tells it what changed: a conversation it
// was not told of (added), one it no longer sees (removed), one whose rev
// moved (ConvChanged). A conversation pushed since the request left
// (epoch) is left to its push: the reply may predate it. The first full
// sync sets the baseline with its last page (last).
func (c *Client) applyConvs(res *protocol.SyncResult, epoch uint64, covers func(string) bool, last bool) {
	r := &c.revs
	var out []protocol.ConvFrame
	r.mu.Lock()
	listed := make(map[string]struct{}, len(res.Convs))
	for _, sc := range res.Convs {
		listed[sc.Conv] = struct{}{}
		have, known := r.revs[sc.Conv]
		switch {
		case !r.baseline:
			r.revs[sc.Conv] = max(have, sc.Rev)
		case !known || (r.gone[sc.Conv] && sc.Rev > have):
			r.revs[sc.Conv], r.gone[sc.Conv] = sc.Rev, false
			out = append(out, protocol.ConvFrame{Conv: sc.Conv, Event: protocol.ConvAdded, Rev: sc.Rev})
		case !r.gone[sc.Conv] && sc.Rev > have:
			r.revs[sc.Conv] = sc.Rev
			out = append(out, protocol.ConvFrame{Conv: sc.Conv, Event: ConvChanged, Rev: sc.Rev})
		}
	}
	if r.baseline {
		for conv := range r.revs {
			if _, ok := listed[conv]; !ok && !r.gone[conv] && r.pushed[conv] <= epoch && covers(conv) {
				r.gone[conv] = true
				out = append(out, protocol.ConvFrame{Conv: conv, Event: protocol.ConvRemoved, Rev: r.revs[conv]})
			}
		}
	}
	if last {
		r.baseline = true
	}
	r.mu.Unlock()
	for _, f := range out {
		c.stats.convEvents.Add(1)
		c.sendConvEvent(f)
	}
}
