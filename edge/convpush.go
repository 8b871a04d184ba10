package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Membership pushes of changes the service did not push: the conversations
// service publishes a notice on subjects.MembersChanged(conv) after every
// member change, naming the users whose conversation lists it changed
// (convapi.Notice). After a change that succeeded it pushes the conv frames
// itself (workers/convsvc, push.go: they reach this edge on the users'
// delivery subjects and the broadcast subject, see hub.signal) and marks
// the notice pushed: such a notice is nothing to do here. For any other
// notice (a write that failed part way, an older service) the edge asks the
// service, for the named users connected to it, whether each is a member
// now and pushes {"t":"conv","conv":..,"event":"added"|"removed"} (with the
// conversation's rev when it is one). So a client learns at once that it
// was removed from a group, which not_member alone does not tell apart
// from an id that never existed. Best effort like every push: a notice
// dropped here (the buffer was full, the service did not answer) leaves
// the client to learn from its next sync, which leaves out conversations
// it is not in.

const (
	// noticeBuffer is how many notices wait for the pusher; more are
	// dropped (counted by nats.go as a slow consumer).
	noticeBuffer = 4096
	// memberListFrom is how many connected users a notice must name for
	// the pusher to load the whole member list once instead of asking per
	// user.
	memberListFrom = 16
	// noticeTimeout bounds the service lookups of one notice.
	noticeTimeout = 5 * time.Second
)

// convPusher holds the notice subscription of an edge.
type convPusher struct {
	sub  *nats.Subscription
	done chan struct{}
}

// startConvPushes subscribes to the change notices (in place at the server
// when it returns) and starts the pusher.
func (e *Edge) startConvPushes(nc *nats.Conn) (*convPusher, error) {
	ch := make(chan *nats.Msg, noticeBuffer)
	sub, err := nc.ChanSubscribe(subjects.MembersChangedAll, ch)
	if err == nil {
		err = nc.FlushTimeout(5 * time.Second)
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("edge: subscribe %s: %w", subjects.MembersChangedAll, err)
	}
	p := &convPusher{sub: sub, done: make(chan struct{})}
	go func() {
		for {
			select {
			case m := <-ch:
				e.convNotice(m)
			case <-p.done:
				return
			}
		}
	}()
	return p, nil
}

// stop ends the pusher. Safe on nil.
func (p *convPusher) stop() {
	if p == nil {
		return
	}
	_ = p.sub.Unsubscribe() // an error means the connection is closed: so is the subscription
	close(p.done)
}

// convNotice pushes the membership of the users m names who are connected
// here.
func (e *Edge) convNotice(m *nats.Msg) {
	conv := convapi.ChangedConv(m.Subject)
	var n convapi.Notice
	if conv == "" || json.Unmarshal(m.Data, &n) != nil || n.Pushed {
		return
	}
	var local []string
	for _, u := range n.Users {
		if e.hub.connected(u) {
			local = append(local, u)
		}
	}
	if len(local) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
	defer cancel()
	isMember := e.memberCheck(ctx, conv, len(local))
	for _, u := range local {
		in, rev, err := isMember(u)
		if err != nil {
			e.log.Warn("conv push: membership lookup failed", "conv", conv, "user", u, "err", err)
			continue
		}
		f := protocol.ConvFrame{Conv: conv, Event: protocol.ConvRemoved}
		if in {
			f.Event, f.Rev = protocol.ConvAdded, rev
		}
		e.hub.deliver(u, [][]byte{protocol.ConvPush(f)})
		e.m.convPushes.Inc()
	}
}

// memberCheck returns a membership test of conv for n users, asking the
// service (never the member cache, which this same notice invalidates),
// with the conversation's rev when the answer has it.
func (e *Edge) memberCheck(ctx context.Context, conv string, n int) func(user string) (bool, int64, error) {
	if n < memberListFrom {
		return func(user string) (bool, int64, error) {
			c, err := e.convs.Get(ctx, user, conv)
			if errors.Is(err, convapi.ErrNotMember) || errors.Is(err, convapi.ErrNotFound) {
				return false, 0, nil
			}
			return err == nil, c.Rev, err
		}
	}
	members, err := e.convs.Members(ctx, conv)
	if errors.Is(err, convapi.ErrNotFound) {
		members, err = nil, nil
	}
	set := make(map[string]struct{}, len(members))
	for _, u := range members {
		set[u] = struct{}{}
	}
	return func(user string) (bool, int64, error) {
		if err != nil {
			return false, 0, err
		}
		_, ok := set[user]
		return ok, 0, nil
	}
}
