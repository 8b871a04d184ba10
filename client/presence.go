package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/natter-im/natter/edge/protocol"
)

// watchSet is the set of users the application watches the presence of
// ([Client.SubscribePresence]): the client subscribes it again on every
// new connection, since the edge drops watches with the connection.
type watchSet struct {
	mu    sync.Mutex
	users map[string]struct{}
}

func (w *watchSet) add(users []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.users == nil {
		w.users = map[string]struct{}{}
	}
	for _, u := range users {
		w.users[u] = struct{}{}
	}
}

func (w *watchSet) remove(users []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range users {
		delete(w.users, u)
	}
}

func (w *watchSet) has(user string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.users[user]
	return ok
}

func (w *watchSet) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.users))
	for u := range w.users {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// SubscribePresence watches the presence of users (each must share a
// conversation with the caller; at most [protocol.MaxPresenceUsers] watched
// in all) and returns their current state, in the order given. From then
// on every change comes on [Client.PresenceEvents], across reconnects: on
// every new connection the client subscribes the watched users again and
// sends their current state on PresenceEvents, so a change missed while
// disconnected is seen too. A refusal (forbidden naming the first user who
// shares no conversation, too_many) watches nobody of the request.
func (c *Client) SubscribePresence(ctx context.Context, users ...string) ([]protocol.PresenceState, error) {
	var res protocol.PresenceResult
	if err := c.call(ctx, protocol.Request{Op: protocol.OpPresenceSub, Users: users}, true, &res); err != nil {
		return nil, err
	}
	c.watch.add(users)
	return res.Users, nil
}

// UnsubscribePresence stops watching users (users not watched are
// ignored). No presence event of theirs is delivered once it returns.
func (c *Client) UnsubscribePresence(ctx context.Context, users ...string) error {
	c.watch.remove(users)
	return c.call(ctx, protocol.Request{Op: protocol.OpPresenceUnsub, Users: users}, true, nil)
}

// HidePresence hides the user's presence (every watcher sees the user
// offline, without last_seen) or, with hidden false, shows it again. The
// setting is the user's, kept by the server across connections and devices.
func (c *Client) HidePresence(ctx context.Context, hidden bool) error {
	return c.call(ctx, protocol.Request{Op: protocol.OpPresenceSet, Hidden: hidden}, true, nil)
}

// SetTyping tells the other members of conv that the user started (true)
// or stopped (false) typing. Renew a start every few seconds while the
// user types: it ends by itself [protocol.TypingExpiresMS] after the push.
// The edge allows 1 per second per connection and conversation, with a
// burst of 3: more gets rate_limited at once (not retried, unlike other
// calls; drop the signal). Groups of more than 1,000 members have no typing
// (forbidden).
func (c *Client) SetTyping(ctx context.Context, conv string, started bool) error {
	state := protocol.TypingStopped
	if started {
		state = protocol.TypingStarted
	}
	return c.callRetry(ctx, protocol.Request{Op: protocol.OpTyping, Conv: conv, State: state}, true, false, nil)
}

// PresenceEvents returns the channel of presence changes of the watched
// users ([Client.SubscribePresence]), and of their current state after
// every reconnect. Best effort: when the application does not drain it
// (Config.EventBuffer), events are dropped ([Stats].DroppedEvents) rather
// than holding up messages. It is closed when the client stops.
func (c *Client) PresenceEvents() <-chan protocol.PresenceState { return c.presence }

// TypingEvents returns the channel of typing signals of the other members
// of the user's conversations. Best effort like [Client.PresenceEvents]:
// dropped when the channel is full. It is closed when the client stops.
func (c *Client) TypingEvents() <-chan protocol.TypingFrame { return c.typing }

// onPresence hands a presence push to the application, if the user is
// still watched.
func (c *Client) onPresence(st protocol.PresenceState) {
	if !c.watch.has(st.User) {
		return
	}
	c.stats.presence.Add(1)
	select {
	case c.presence <- st:
	default:
		c.stats.dropped.Add(1)
	}
}

func (c *Client) onTyping(f protocol.TypingFrame) {
	c.stats.typing.Add(1)
	select {
	case c.typing <- f:
	default:
		c.stats.dropped.Add(1)
	}
}

// resubscribe subscribes the watched users again on a new connection and
// hands their current state to the application. A user the edge refuses
// now (no conversation shared any more) is dropped from the set, the
// others are subscribed one by one. It returns when done or when cn ends.
func (c *Client) resubscribe(cn *conn) {
	users := c.watch.list()
	if len(users) == 0 {
		return
	}
	states, e, err := c.presenceSub(cn, users)
	if err != nil {
		return // the connection ended: the next one subscribes again
	}
	if e != nil {
		c.log.Info("presence: subscribing again refused, trying one by one", "code", e.Code, "msg", e.Msg, "session", cn.hello.Session)
		states = states[:0]
		for _, u := range users {
			st, e, err := c.presenceSub(cn, []string{u})
			if err != nil {
				return
			}
			if e != nil {
				c.watch.remove([]string{u})
				continue
			}
			states = append(states, st...)
		}
	}
	for _, st := range states {
		c.onPresence(st)
	}
}

// presenceSub sends one presence.sub on cn, retrying rate_limited and
// unavailable with back-off. err is set when the connection ended.
func (c *Client) presenceSub(cn *conn, users []string) ([]protocol.PresenceState, *Error, error) {
	for attempt := 0; ; attempt++ {
		req := protocol.Request{Op: protocol.OpPresenceSub, Users: users}
		f, _, err := c.roundTrip(context.Background(), cn, &req)
		if err != nil {
			return nil, nil, err
		}
		if f.Err != nil {
			e := &Error{Op: req.Op, Code: f.Err.Code, Msg: f.Err.Msg}
			if !e.Retryable() {
				return nil, e, nil
			}
			if !c.pause(c.backoff(attempt), cn.done) {
				return nil, nil, errDisconnected
			}
			continue
		}
		var res protocol.PresenceResult
		if err := json.Unmarshal(f.Data, &res); err != nil {
			return nil, &Error{Op: req.Op, Code: protocol.CodeInternal, Msg: fmt.Sprintf("decoding reply: %v", err)}, nil
		}
		return res.Users, nil, nil
	}
}
