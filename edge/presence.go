package edge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/presencekv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Presence (docs/design.md, "Presence and typing").
//
// Announcing: every edge has an id of its own (random per process). When
// the first device of a user connects to it, it writes the lease
// on.<user>.<edge> into the PRESENCE bucket (per-key TTL PresenceLease,
// renewed every PresenceLease/3) and then publishes {"edge","on":true} on
// im.presence.<user>; when the user's last device here goes, it deletes
// the lease, writes seen.<user> and publishes {"edge","on":false,"ts"}.
// A user is online while any edge holds a lease. One announcer goroutine
// does this for the whole edge, from a set of users whose connection state
// changed: a user who connects and goes again before it runs costs
// nothing, and a reconnect storm costs one batch of asynchronous writes.
//
// Watching: a session that watches user W makes the edge subscribe to
// im.presence.<W> once, whatever the number of its sessions watching W
// (like the hub's delivery subscriptions); the edge keeps W's set of edges
// and pushes {"t":"presence"} to the watching sessions when W's state
// flips. So a change costs one core-NATS message per edge that watches the
// user, never one per pair of contacts. The first watcher on an edge has
// the user's state read from the bucket by one loader goroutine for the
// whole edge, which reads together every user that came to be watched
// while it was busy (one flush, then one batched direct get per 64 users):
// a reconnect storm's subscribes cost a few reads, not one per session.
//
// Edge failure: every edge publishes its id on im.presence.hb.edges every
// PresenceLease/6; an edge not heard from for 2/3 PresenceLease is taken
// as gone by every other edge, which takes the users only it held offline
// (a SIGKILLed edge's users go offline within PresenceLease). Its leases
// expire by themselves in the bucket within PresenceLease, so readers that
// start later do not see them.
type presence struct {
	e         *Edge
	nc        *nats.Conn
	js        jetstream.JetStream
	log       *slog.Logger
	id        string
	seed      maphash.Seed
	lease     time.Duration
	directGet string

	// announcer: dirty is sharded by user so that a storm's thousands of
	// connects do not queue on one mutex.
	dirty     [presenceShards]dirtyShard
	wake      chan struct{}
	announced map[string][]string // the announcer goroutine's own: user -> devices in the lease

	// watcher
	mu      sync.Mutex
	watched map[string]*watch
	peers   map[string]peer  // edge id -> when last heard
	dead    map[string]int64 // edges taken as gone -> when (since)
	ch      chan *nats.Msg
	loadq   []*watch      // fresh watches for the loader
	loadNow chan struct{} // wakes the loader
	subs    []*nats.Subscription
	done    chan struct{}
	stopped sync.WaitGroup
}

// dirtyShard is one shard of the users whose connection state changed.
type dirtyShard struct {
	mu    sync.Mutex
	users map[string]struct{}
}

// presenceShards is how many shards the announcer's dirty set has.
const presenceShards = 64

// peer is another edge as heard from.
type peer struct {
	heard int64 // Edge.since
	wall  int64 // Unix ms
}

// watch is one watched user on this edge.
type watch struct {
	user     string
	sub      *nats.Subscription
	sessions map[*session]struct{}
	edges    map[string]struct{}
	hidden   bool
	lastSeen int64
	online   bool // the state last pushed (or answered)
	ready    chan struct{}
	loaded   bool
	loadErr  error // set before ready closes when the read failed
	pending  []presenceEvent
	// blocks are the users the watched user blocks: their sessions see
	// the user offline, without last_seen, and get no pushes of them.
	blocks map[string]struct{}
}

// presenceEvent is the body of a message on im.presence.<user>.
type presenceEvent struct {
	Edge   string `json:"edge,omitempty"`
	On     bool   `json:"on,omitempty"`
	TS     int64  `json:"ts,omitempty"`
	Hidden *bool  `json:"hidden,omitempty"`
	// Blocks is the user's blocks after a change (jetstream/blocks.Event).
	Blocks *[]string `json:"blocks,omitempty"`
}

const (
	// announceInFlight bounds the bucket writes the announcer has
	// unacknowledged.
	announceInFlight = 1024
	presenceBuffer   = 16 << 10
	// presenceReadChunk is how many users one batched direct get reads
	// (four subject filters each; the server answers at most 1,024
	// subjects).
	presenceReadChunk = 64
)

func newEdgeID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "e" + hex.EncodeToString(b[:])
}

// newPresence is the edge's presence, its goroutines not started.
func (e *Edge) newPresence(nc *nats.Conn, js jetstream.JetStream) *presence {
	p := &presence{
		e: e, nc: nc, js: js, log: e.log.With("edge_id", e.cfg.EdgeID), id: e.cfg.EdgeID, lease: e.cfg.PresenceLease,
		seed:      maphash.MakeSeed(),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketPresence),
		wake:      make(chan struct{}, 1), announced: map[string][]string{},
		watched: map[string]*watch{}, peers: map[string]peer{}, dead: map[string]int64{},
		ch: make(chan *nats.Msg, presenceBuffer), loadNow: make(chan struct{}, 1), done: make(chan struct{}),
	}
	for i := range p.dirty {
		p.dirty[i].users = map[string]struct{}{}
	}
	return p
}

// startPresence subscribes to the heartbeats and starts the announcer, the
// heartbeat and the watcher's dispatcher.
func (e *Edge) startPresence(nc *nats.Conn, js jetstream.JetStream) (*presence, error) {
	p := e.newPresence(nc, js)
	sub, err := nc.ChanSubscribe(subjects.PresenceHeartbeat, p.ch)
	if err == nil {
		p.subs = append(p.subs, sub)
		err = nc.Publish(subjects.PresenceHeartbeat, []byte(p.id))
	}
	if err != nil {
		return nil, fmt.Errorf("edge: subscribe %s: %w", subjects.PresenceHeartbeat, err)
	}
	p.stopped.Add(4)
	go p.dispatch()
	go p.loader()
	go p.announcer()
	go p.heartbeat()
	return p, nil
}

// stop ends the goroutines after a last announcement (the sessions are gone
// by then: their users go offline now rather than when the leases expire).
func (p *presence) stop() {
	if p == nil {
		return
	}
	p.announceNow()
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
	close(p.done)
	p.stopped.Wait()
}

// changed marks user for the announcer: a device of the user here came or
// went (the first and the last flip the user's presence; the others change
// the devices the lease lists).
func (p *presence) changed(user string) {
	if p == nil {
		return
	}
	d := &p.dirty[maphash.String(p.seed, user)%presenceShards]
	d.mu.Lock()
	d.users[user] = struct{}{}
	d.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *presence) announcer() {
	defer p.stopped.Done()
	t := time.NewTicker(p.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-p.wake:
			p.announceNow()
		case <-t.C:
			p.renew()
		case <-p.done:
			return
		}
	}
}

// announceNow announces the users whose state changed: leases first (and
// waits for them), then the events, so a watcher that gets an event and
// then reads the bucket finds the lease.
func (p *presence) announceNow() {
	var dirty []string
	for i := range p.dirty {
		d := &p.dirty[i]
		d.mu.Lock()
		for u := range d.users {
			dirty = append(dirty, u)
		}
		clear(d.users)
		d.mu.Unlock()
	}
	if len(dirty) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	var futures []jetstream.PubAckFuture
	var events []*nats.Msg
	for _, u := range dirty {
		if len(futures) >= announceInFlight {
			// Bounded: past the client's limit of outstanding async
			// publishes (4,000) a write would fail after a stall.
			p.wait(futures)
			futures = futures[:0]
		}
		devices := p.e.hub.devices(u)
		old, had := p.announced[u]
		want := len(devices) > 0
		switch {
		case want && !had:
			p.announced[u] = devices
			futures = p.put(futures, p.leaseMsg(u))
			events = append(events, p.event(u, presenceEvent{Edge: p.id, On: true, TS: now}))
		case want && !presencekv.SameDevices(old, devices):
			// Another device of an online user came or went: the lease
			// lists the devices (the push role reads them), no event.
			p.announced[u] = devices
			futures = p.put(futures, p.leaseMsg(u))
		case !want && had:
			delete(p.announced, u)
			del := &nats.Msg{Subject: subjects.KVSubject(subjects.BucketPresence, subjects.PresenceOnKey(u, p.id)), Header: nats.Header{}}
			del.Header.Set("KV-Operation", "DEL")
			del.Header.Set(jetstream.MsgTTLHeader, p.lease.String())
			futures = p.put(futures, del)
			seen := &nats.Msg{Subject: subjects.KVSubject(subjects.BucketPresence, subjects.PresenceSeenKey(u)), Data: strconv.AppendInt(nil, now, 10)}
			futures = p.put(futures, seen)
			events = append(events, p.event(u, presenceEvent{Edge: p.id, TS: now}))
		}
	}
	p.wait(futures)
	for _, m := range events {
		if err := p.nc.PublishMsg(m); err != nil {
			p.log.Warn("presence: publish", "subject", m.Subject, "err", err)
		}
	}
}

// renew puts the leases of every user announced here again.
func (p *presence) renew() {
	p.announceNow()
	var futures []jetstream.PubAckFuture
	for u := range p.announced {
		if len(futures) >= announceInFlight {
			p.wait(futures)
			futures = futures[:0]
		}
		futures = p.put(futures, p.leaseMsg(u))
	}
	p.wait(futures)
}

// leaseMsg is the write of user's lease: this edge and the user's devices
// on it.
func (p *presence) leaseMsg(user string) *nats.Msg {
	data := presencekv.Lease{Edge: p.id, Devices: p.announced[user]}.Encode()
	m := &nats.Msg{Subject: subjects.KVSubject(subjects.BucketPresence, subjects.PresenceOnKey(user, p.id)), Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgTTLHeader, p.lease.String())
	return m
}

func (p *presence) event(user string, ev presenceEvent) *nats.Msg {
	data, _ := json.Marshal(ev)
	return &nats.Msg{Subject: subjects.Presence(user), Data: data}
}

func (p *presence) put(futures []jetstream.PubAckFuture, m *nats.Msg) []jetstream.PubAckFuture {
	f, err := p.js.PublishMsgAsync(m)
	if err != nil {
		p.log.Warn("presence: write", "subject", m.Subject, "err", err)
		return futures
	}
	return append(futures, f)
}

// wait waits for the acks of futures (bounded), logging failures.
func (p *presence) wait(futures []jetstream.PubAckFuture) {
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			p.log.Warn("presence: write failed", "subject", f.Msg().Subject, "err", err)
		case <-deadline.C:
			p.log.Warn("presence: writes unanswered", "n", len(futures))
			return
		}
	}
}

// heartbeat publishes this edge's id every lease/6 and takes the peers not
// heard from for 2/3 lease as gone (checked every second).
func (p *presence) heartbeat() {
	defer p.stopped.Done()
	hb := time.NewTicker(p.lease / 6)
	defer hb.Stop()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-hb.C:
			_ = p.nc.Publish(subjects.PresenceHeartbeat, []byte(p.id))
		case <-sweep.C:
			p.sweep()
		case <-p.done:
			return
		}
	}
}

// deadAfter is how long a silent peer is taken as alive.
func (p *presence) deadAfter() int64 { return int64(p.lease) * 2 / 3 }

// sweep takes the silent peers as gone and their users offline.
func (p *presence) sweep() {
	now := p.e.since()
	p.mu.Lock()
	var gone []string
	lastHeard := map[string]int64{}
	for id, pr := range p.peers {
		if now-pr.heard > p.deadAfter() {
			gone = append(gone, id)
			lastHeard[id] = pr.wall
			p.dead[id] = now
			delete(p.peers, id)
		}
	}
	for id, at := range p.dead {
		if now-at > 2*int64(p.lease) { // its leases have expired
			delete(p.dead, id)
		}
	}
	type push struct {
		w  *watch
		st protocol.PresenceState
	}
	var pushes []push
	if len(gone) > 0 {
		for _, w := range p.watched {
			hit := false
			for _, id := range gone {
				if _, ok := w.edges[id]; ok {
					delete(w.edges, id)
					// Last seen: when the edge was last heard of.
					w.lastSeen = max(w.lastSeen, lastHeard[id])
					hit = true
				}
			}
			if hit {
				if st, ok := w.flip(); ok {
					pushes = append(pushes, push{w, st})
				}
			}
		}
	}
	p.mu.Unlock()
	for _, id := range gone {
		p.log.Info("presence: edge gone", "edge", id)
	}
	for _, ps := range pushes {
		p.push(ps.w, ps.st)
	}
}

// touch records that peer id is alive (heard, or named by a lease or an
// event). p.mu is held. It reports false for an edge taken as gone.
func (p *presence) touch(id string, heard bool) bool {
	if id == p.id {
		return true
	}
	if _, gone := p.dead[id]; gone && !heard {
		return false
	}
	now := p.e.since()
	if _, ok := p.peers[id]; heard || !ok {
		if heard {
			delete(p.dead, id)
		}
		// Named before heard: alive until it has been silent as long as a
		// known peer may be.
		p.peers[id] = peer{heard: now, wall: time.Now().UnixMilli()}
	}
	return true
}

// dispatch handles heartbeats and presence events.
func (p *presence) dispatch() {
	defer p.stopped.Done()
	for {
		select {
		case m := <-p.ch:
			if m.Subject == subjects.PresenceHeartbeat {
				p.mu.Lock()
				p.touch(string(m.Data), true)
				p.mu.Unlock()
				continue
			}
			user := subjects.UserFromPresence(m.Subject)
			var ev presenceEvent
			if user == "" || json.Unmarshal(m.Data, &ev) != nil {
				continue
			}
			p.mu.Lock()
			w := p.watched[user]
			var st protocol.PresenceState
			flipped := false
			if w != nil && w.loaded && ev.Blocks != nil {
				p.reblock(w, *ev.Blocks)
				continue // reblock unlocked p.mu
			}
			if w != nil {
				if !w.loaded {
					w.pending = append(w.pending, ev)
				} else if p.apply(w, ev) {
					st, flipped = w.flip()
				}
			}
			p.mu.Unlock()
			if flipped {
				p.push(w, st)
			}
		case <-p.done:
			return
		}
	}
}

// apply folds ev into w; p.mu is held. It reports whether w may have
// changed.
func (p *presence) apply(w *watch, ev presenceEvent) bool {
	switch {
	case ev.Blocks != nil:
		w.setBlocks(*ev.Blocks)
		return false
	case ev.Hidden != nil:
		w.hidden = *ev.Hidden
	case ev.Edge == "":
		return false
	case ev.On:
		if !p.touch(ev.Edge, false) {
			return false
		}
		w.edges[ev.Edge] = struct{}{}
	default:
		delete(w.edges, ev.Edge)
		w.lastSeen = max(w.lastSeen, ev.TS)
	}
	return true
}

// flip reports w's state if it differs from the one last pushed (and
// records it). p.mu is held.
func (w *watch) flip() (protocol.PresenceState, bool) {
	st := w.state()
	if st.Online == w.online {
		return st, false
	}
	w.online = st.Online
	return st, true
}

// state is w's state as others see it. p.mu is held.
func (w *watch) state() protocol.PresenceState {
	st := protocol.PresenceState{User: w.user, Online: len(w.edges) > 0 && !w.hidden}
	if !st.Online && !w.hidden {
		st.LastSeen = w.lastSeen
	}
	return st
}

// stateFor is w's state as user sees it: offline, without last_seen, when
// the watched user blocks user. p.mu is held.
func (w *watch) stateFor(user string) protocol.PresenceState {
	if _, ok := w.blocks[user]; ok {
		return protocol.PresenceState{User: w.user}
	}
	return w.state()
}

// setBlocks replaces w's blocks. p.mu is held.
func (w *watch) setBlocks(users []string) {
	w.blocks = make(map[string]struct{}, len(users))
	for _, u := range users {
		w.blocks[u] = struct{}{}
	}
}

// reblock replaces w's blocks after a change and pushes to the sessions
// whose view changed: offline to those of a user just blocked (if the
// watched user showed online), the state to those just unblocked. p.mu is
// held and released.
func (p *presence) reblock(w *watch, users []string) {
	before := w.blocks
	w.setBlocks(users)
	type push struct {
		s     *session
		frame []byte
	}
	var out []push
	st := w.state()
	for s := range w.sessions {
		_, was := before[s.user]
		_, is := w.blocks[s.user]
		switch {
		case is && !was && st.Online:
			out = append(out, push{s, protocol.PresencePush(protocol.PresenceState{User: w.user})})
		case was && !is && st.Online:
			out = append(out, push{s, protocol.PresencePush(st)})
		}
	}
	p.mu.Unlock()
	for _, x := range out {
		x.s.enqueue(x.frame)
	}
	p.e.m.presencePushes.Add(float64(len(out)))
}

// push queues st on every session watching w, except those of the users w
// blocks.
func (p *presence) push(w *watch, st protocol.PresenceState) {
	frame := protocol.PresencePush(st)
	p.mu.Lock()
	targets := make([]*session, 0, len(w.sessions))
	for s := range w.sessions {
		if _, ok := w.blocks[s.user]; ok {
			continue
		}
		targets = append(targets, s)
	}
	p.mu.Unlock()
	for _, s := range targets {
		s.enqueue(frame)
	}
	p.e.m.presencePushes.Add(float64(len(targets)))
}
