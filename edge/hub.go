package edge

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
)

const (
	hubShards = 64
	// dispatchers is how many goroutines hand deliveries to sessions; a
	// user's deliveries always go through the same one, in order.
	dispatchers = 4
	// dispatchBuffer is each dispatcher's channel: a delivery that finds it
	// full is dropped by nats.go (a slow-consumer error), which the
	// client's seq gap and sync repair.
	dispatchBuffer = 16 << 10
)

// hub maps users to their sessions on this edge and holds one core-NATS
// subscription per connected user on im.dlv.<user>. The subscriptions are
// channel subscriptions feeding a few dispatcher goroutines (nats.go would
// start a goroutine per callback subscription, that is per user). A
// delivery is encoded into a push frame once and queued on every session of
// the user.
type hub struct {
	nc     *nats.Conn
	seed   maphash.Seed
	shards [hubShards]hubShard
	m      *metrics
	ch     [dispatchers]chan *nats.Msg
	done   chan struct{}
}

type hubShard struct {
	mu    sync.Mutex
	users map[string]*userEntry
}

type userEntry struct {
	sub      *nats.Subscription
	sessions map[*session]struct{}
}

func newHub(nc *nats.Conn, m *metrics) *hub {
	h := &hub{nc: nc, seed: maphash.MakeSeed(), m: m, done: make(chan struct{})}
	for i := range h.shards {
		h.shards[i].users = make(map[string]*userEntry)
	}
	for i := range h.ch {
		h.ch[i] = make(chan *nats.Msg, dispatchBuffer)
		go h.dispatch(h.ch[i])
	}
	return h
}

// dispatch delivers the messages of one dispatcher channel until stop.
func (h *hub) dispatch(ch chan *nats.Msg) {
	for {
		select {
		case m := <-ch:
			if user := subjects.UserFromDeliver(m.Subject); user != "" {
				h.deliver(user, m.Data)
			}
		case <-h.done:
			return
		}
	}
}

// stop ends the dispatchers (after the sessions are gone).
func (h *hub) stop() { close(h.done) }

func (h *hub) shard(user string) *hubShard {
	return &h.shards[maphash.String(h.seed, user)%hubShards]
}

// add registers s. The user's subscription is in place at the server when
// add returns, so a sync the client starts afterwards cannot miss a push.
func (h *hub) add(s *session) error {
	sh := h.shard(s.user)
	sh.mu.Lock()
	e, ok := sh.users[s.user]
	if ok {
		e.sessions[s] = struct{}{}
		sh.mu.Unlock()
		return nil
	}
	e = &userEntry{sessions: map[*session]struct{}{s: {}}}
	user := s.user
	ch := h.ch[maphash.String(h.seed, user)%dispatchers]
	sub, err := h.nc.ChanSubscribe(subjects.Deliver(user), ch)
	if err != nil {
		sh.mu.Unlock()
		return fmt.Errorf("edge: subscribe %s: %w", user, err)
	}
	e.sub = sub
	sh.users[user] = e
	sh.mu.Unlock()
	if err := h.nc.FlushTimeout(5 * time.Second); err != nil {
		h.remove(s)
		return fmt.Errorf("edge: subscribe %s: %w", user, err)
	}
	return nil
}

// remove unregisters s, dropping the user's subscription with its last session.
func (h *hub) remove(s *session) {
	sh := h.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.users[s.user]
	if !ok {
		return
	}
	delete(e.sessions, s)
	if len(e.sessions) == 0 {
		_ = e.sub.Unsubscribe()
		delete(sh.users, s.user)
	}
}

// deliver queues one delivery on every session of user. A session whose
// queue is full is closed as a slow consumer; nobody else waits for it.
func (h *hub) deliver(user string, msgJSON []byte) {
	frame := protocol.Push(msgJSON)
	sh := h.shard(user)
	sh.mu.Lock()
	e := sh.users[user]
	var targets []*session
	if e != nil {
		targets = make([]*session, 0, len(e.sessions))
		for s := range e.sessions {
			targets = append(targets, s)
		}
	}
	sh.mu.Unlock()
	for _, s := range targets {
		if s.enqueue(frame) {
			h.m.pushes.Inc()
		}
	}
}

// sessions returns every session (for lame-duck shutdown).
func (h *hub) sessions() []*session {
	var out []*session
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, e := range sh.users {
			for s := range e.sessions {
				out = append(out, s)
			}
		}
		sh.mu.Unlock()
	}
	return out
}
