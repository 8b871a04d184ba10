package edge

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
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
	// broadcastBuffer is the broadcast dispatcher's channel; a broadcast
	// stands for a batch to a whole group, so fewer of them queue.
	broadcastBuffer = 1 << 10
)

// hub maps users to their sessions on this edge and holds one core-NATS
// subscription per connected user on im.dlv.<user>. The subscriptions are
// channel subscriptions feeding a few dispatcher goroutines (nats.go would
// start a goroutine per callback subscription, that is per user). A
// delivery is encoded into a push frame once and queued on every session of
// the user. One more subscription, on the broadcast subject im.dlv.grp.all,
// feeds a dispatcher of its own with large groups' batches and their
// member lists (broadcast.go).
type hub struct {
	nc     *nats.Conn
	seed   maphash.Seed
	shards [hubShards]hubShard
	m      *metrics
	ch     [dispatchers]chan *nats.Msg
	bch    chan *nats.Msg
	bsub   *nats.Subscription
	since  func() int64 // the edge's clock (Edge.since)
	// presence hears of every user's first session here and last one
	// gone (nil: nobody).
	presence *presence
	done     chan struct{}
	// members answers the broadcasts addressed by conversation (nil: they
	// are dropped); users counts the users with a session here.
	members *convapi.MemberCache
	users   atomic.Int64
	// flushes coalesces the flushes after the users' subscriptions.
	flushes *flushGroup
}

type hubShard struct {
	mu    sync.Mutex
	users map[string]*userEntry
	// all is every session of the shard's users, for the heartbeat;
	// session.slot is its index.
	all []*session
}

type userEntry struct {
	sub      *nats.Subscription
	sessions []*session // one per device, mostly one or a few
}

// newHub starts the hub's dispatchers and heartbeat and subscribes to the
// broadcasts. The broadcast subscription is in place at the server when
// newHub returns, before any session can be added: a session never misses
// a broadcast its user's own subscription would have caught.
func newHub(nc *nats.Conn, m *metrics, ping time.Duration, since func() int64, members *convapi.MemberCache) (*hub, error) {
	h := &hub{nc: nc, seed: maphash.MakeSeed(), m: m, since: since, done: make(chan struct{}), members: members,
		bch: make(chan *nats.Msg, broadcastBuffer)}
	for i := range h.shards {
		h.shards[i].users = make(map[string]*userEntry)
	}
	h.flushes = newFlushGroup(nc, 5*time.Second, h.done)
	for i := range h.ch {
		h.ch[i] = make(chan *nats.Msg, dispatchBuffer)
		go h.dispatch(h.ch[i])
	}
	go h.dispatchBroadcasts(h.bch)
	go h.heartbeat(ping)
	sub, err := nc.ChanSubscribe(subjects.DeliverGroups, h.bch)
	if err == nil {
		h.bsub = sub
		err = nc.FlushTimeout(5 * time.Second)
	}
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("edge: subscribe %s: %w", subjects.DeliverGroups, err)
	}
	return h, nil
}

const (
	// heartbeatSweeps is how often per ping interval the heartbeat looks
	// at every session, in heartbeatSteps ticks of a slice of the shards
	// each: a silent client is pinged 1 to 1 1/4 ping intervals after it
	// was last heard and closed after 2 to 2 1/4; a session is closed at
	// most 1/4 interval after its token has expired.
	heartbeatSweeps = 4
	heartbeatSteps  = 8
)

// heartbeat pings the sessions not heard from (no frame, no pong) for a
// ping interval, pings them again after another interval without an answer
// and closes them (4009) after two; it also closes the sessions whose token
// has expired (4001). One goroutine and one ticker serve the whole edge: an
// idle socket has no timer or goroutine of its own for this, and a client
// that talks is not pinged.
func (h *hub) heartbeat(every time.Duration) {
	t := time.NewTicker(every / (heartbeatSweeps * heartbeatSteps))
	defer t.Stop()
	var ping, idle, expired []*session
	for step := 0; ; step = (step + 1) % heartbeatSteps {
		select {
		case <-t.C:
		case <-h.done:
			return
		}
		ping, idle, expired = ping[:0], idle[:0], expired[:0]
		now := h.since()
		for i := step; i < hubShards; i += heartbeatSteps {
			sh := &h.shards[i]
			sh.mu.Lock()
			for _, s := range sh.all {
				switch silent := now - s.heard.Load(); {
				case now >= s.expires:
					expired = append(expired, s)
				case silent >= 2*int64(every):
					idle = append(idle, s)
				case silent >= int64(every) && now-s.pinged.Load() >= int64(every):
					s.pinged.Store(now)
					ping = append(ping, s)
				}
			}
			sh.mu.Unlock()
		}
		for _, s := range ping {
			s.queuePing()
		}
		for _, s := range idle {
			s.close(protocol.CloseIdleTimeout, "idle timeout", true, true)
		}
		for _, s := range expired {
			s.close(protocol.CloseUnauthorized, "token expired", true, false)
		}
		clear(ping)
		clear(idle)
		clear(expired)
	}
}

// dispatch delivers the messages of one dispatcher channel until stop.
//
// The fan-out publishes a group's batch to every member with the same data
// and header, and a dispatcher gets its members' copies one after another:
// it keeps the push frames of the last delivery it encoded and reuses them
// for a delivery with the same data and header (frames are never changed
// once made, so sessions can share them).
func (h *hub) dispatch(ch chan *nats.Msg) {
	var last struct {
		data   []byte
		batch  string
		frames [][]byte
	}
	for {
		select {
		case m := <-ch:
			user := subjects.UserFromDeliver(m.Subject)
			if user == "" {
				continue
			}
			batch := ""
			if m.Header != nil {
				switch m.Header.Get(delivery.SignalHeader) {
				case "":
				case delivery.SignalRead:
					h.readSignal(user, m) // readpush.go
					continue
				default:
					h.signal(user, m)
					continue
				}
				batch = m.Header.Get(delivery.Header)
			}
			if last.frames == nil || batch != last.batch || !bytes.Equal(m.Data, last.data) {
				entries, err := delivery.Split(m)
				if err != nil {
					// At most once: the client's seq gap and sync repair it.
					h.m.badDeliveries.Inc()
					continue
				}
				last.data, last.batch, last.frames = m.Data, batch, pushFrames(entries)
			}
			h.deliverTraced(m.Header, user, last.frames) // = h.deliver when not traced
		case <-h.done:
			return
		}
	}
}

// pushFrames returns the push frames of entries.
func pushFrames(entries [][]byte) [][]byte {
	frames := make([][]byte, len(entries))
	for i, e := range entries {
		frames[i] = protocol.Push(e)
	}
	return frames
}

// stop drops the broadcast subscription and ends the dispatchers and the
// heartbeat (after the sessions are gone).
func (h *hub) stop() {
	if h.bsub != nil {
		_ = h.bsub.Unsubscribe() // an error means the connection is closed: so is the subscription
	}
	close(h.done)
}

func (h *hub) shard(user string) *hubShard {
	return &h.shards[maphash.String(h.seed, user)%hubShards]
}

// add registers s. The user's subscription is in place at the server when
// add returns, so a sync the client starts afterwards cannot miss a push.
func (h *hub) add(s *session) error {
	sh := h.shard(s.user)
	sh.mu.Lock()
	s.slot = len(sh.all)
	sh.all = append(sh.all, s)
	e, ok := sh.users[s.user]
	if ok {
		e.sessions = append(e.sessions, s)
		sh.mu.Unlock()
		h.presence.changed(s.user) // the lease lists the devices
		return nil
	}
	e = &userEntry{sessions: []*session{s}}
	user := s.user
	ch := h.ch[maphash.String(h.seed, user)%dispatchers]
	sub, err := h.nc.ChanSubscribe(subjects.Deliver(user), ch)
	if err != nil {
		sh.drop(s)
		sh.mu.Unlock()
		return fmt.Errorf("edge: subscribe %s: %w", user, err)
	}
	e.sub = sub
	sh.users[user] = e
	h.users.Add(1)
	sh.mu.Unlock()
	if err := h.flushes.flush(); err != nil {
		h.remove(s)
		return fmt.Errorf("edge: subscribe %s: %w", user, err)
	}
	h.presence.changed(user)
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
	i := slices.Index(e.sessions, s)
	if i < 0 {
		return
	}
	e.sessions = slices.Delete(e.sessions, i, i+1)
	sh.drop(s)
	if len(e.sessions) == 0 {
		_ = e.sub.Unsubscribe()
		delete(sh.users, s.user)
		h.users.Add(-1)
	}
	h.presence.changed(s.user)
}

// drop takes s out of sh.all. sh.mu is held.
func (sh *hubShard) drop(s *session) {
	last := len(sh.all) - 1
	moved := sh.all[last]
	sh.all[s.slot], moved.slot = moved, s.slot
	sh.all[last] = nil
	sh.all = sh.all[:last]
}

// deliver queues frames (the push frames of log entries of one
// conversation, in order) on every session of user, all at once. A session
// whose queue is full is closed as a slow consumer; nobody else waits for
// it.
func (h *hub) deliver(user string, frames [][]byte) {
	sh := h.shard(user)
	sh.mu.Lock()
	e := sh.users[user]
	var one [1]*session // most users have one session: no copy to allocate
	var targets []*session
	switch {
	case e == nil:
	case len(e.sessions) == 1:
		one[0] = e.sessions[0]
		targets = one[:]
	default:
		targets = slices.Clone(e.sessions)
	}
	sh.mu.Unlock()
	for _, s := range targets {
		if n := s.enqueuePushes(frames); n > 0 {
			h.m.pushes.Add(float64(n))
		}
	}
}

// connected reports whether user has a session on this edge.
func (h *hub) connected(user string) bool {
	sh := h.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.users[user] != nil
}

// devices returns the ids of user's devices with a session on this edge,
// sorted and without repeats (nil: none).
func (h *hub) devices(user string) []string {
	sh := h.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.users[user]
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.sessions))
	for _, s := range e.sessions {
		out = append(out, s.device)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sessions returns every session (for lame-duck shutdown).
func (h *hub) sessions() []*session {
	var out []*session
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		out = append(out, sh.all...)
		sh.mu.Unlock()
	}
	return out
}
