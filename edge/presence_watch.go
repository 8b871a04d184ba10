package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/blocks"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// presenceSub answers presence.sub: the users must share a conversation
// with the session's user, and the session may watch at most
// protocol.MaxPresenceUsers users. Nothing is watched unless all are
// allowed.
func (s *session) presenceSub(ctx context.Context, users []string) (any, error) {
	p := s.e.presence
	users = dedupe(users)
	p.mu.Lock()
	n := len(s.watching)
	for _, u := range users {
		if _, ok := s.watching[u]; !ok {
			n++
		}
	}
	p.mu.Unlock()
	if n > protocol.MaxPresenceUsers {
		return nil, &protocol.Error{Code: protocol.CodeTooMany, Msg: "users: watching " + strconv.Itoa(n) + " users would pass the bound of " + strconv.Itoa(protocol.MaxPresenceUsers) + " per connection: unsubscribe some first"}
	}
	i, err := s.e.shares(ctx, s.user, users)
	if err != nil {
		return nil, err
	}
	if i >= 0 {
		return nil, &protocol.Error{Code: protocol.CodeForbidden, Msg: "users[" + strconv.Itoa(i) + "]: " + users[i] + " shares no conversation with you"}
	}
	states, err := p.watchUsers(ctx, s, users)
	if err != nil {
		return nil, err
	}
	return protocol.PresenceResult{Users: states}, nil
}

func dedupe(users []string) []string {
	seen := make(map[string]struct{}, len(users))
	out := users[:0:0]
	for _, u := range users {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

// shares returns the index of the first of targets that shares no
// conversation with user, or -1. Unknown users share none. It asks the
// conversations service for user's list (cached there), which carries the
// members of groups of up to convapi.MaxInlineMembers, and the member
// cache for the members of larger groups, only as far as needed.
func (e *Edge) shares(ctx context.Context, user string, targets []string) (int, error) {
	convs, err := e.convs.List(ctx, user)
	if err != nil {
		return 0, err
	}
	ids := make(map[string]bool, len(convs))
	for _, c := range convs {
		ids[c.ID] = true
	}
	need := map[string]bool{}
	for _, t := range targets {
		if t != user && !ids[natter.DirectID(user, t)] {
			need[t] = true
		}
	}
	for _, c := range convs {
		if len(need) == 0 {
			break
		}
		if strings.HasPrefix(c.ID, "d_") {
			continue
		}
		// The list has the members of every group of up to
		// convapi.MaxInlineMembers: a cold edge's member cache is asked
		// only for larger ones.
		members := c.Members
		if c.MemberCount == 0 || len(members) != c.MemberCount {
			if members, err = e.members.Members(ctx, c.ID); err != nil {
				return 0, err
			}
		}
		for _, m := range members {
			delete(need, m)
		}
	}
	for i, t := range targets {
		if need[t] {
			return i, nil
		}
	}
	return -1, nil
}

// watchUsers makes s watch users and returns their states. The users
// nobody here watched yet are queued for the loader, which reads them from
// the bucket together with those of the other sessions that subscribe
// meanwhile.
func (p *presence) watchUsers(ctx context.Context, s *session, users []string) ([]protocol.PresenceState, error) {
	all := make([]*watch, 0, len(users))
	fresh := false
	p.mu.Lock()
	for _, u := range users {
		w := p.watched[u]
		if w == nil {
			// The loader subscribes (one goroutine for the whole edge, not
			// thousands queueing on the connection while holding p.mu).
			w = &watch{user: u, sessions: map[*session]struct{}{}, edges: map[string]struct{}{}, ready: make(chan struct{})}
			p.watched[u] = w
			p.loadq = append(p.loadq, w)
			fresh = true
		}
		w.sessions[s] = struct{}{}
		if s.watching == nil {
			s.watching = map[string]struct{}{}
		}
		s.watching[u] = struct{}{}
		all = append(all, w)
	}
	p.mu.Unlock()
	if fresh {
		select {
		case p.loadNow <- struct{}{}:
		default:
		}
	}
	for _, w := range all {
		select {
		case <-w.ready:
			if w.loadErr != nil {
				p.unwatch(s, users)
				return nil, w.loadErr
			}
		case <-ctx.Done():
			p.unwatch(s, users)
			return nil, ctx.Err()
		}
	}
	out := make([]protocol.PresenceState, len(all))
	p.mu.Lock()
	for i, w := range all {
		out[i] = w.stateFor(s.user)
	}
	p.mu.Unlock()
	return out, nil
}

// errWatchGone ends a watch whose sessions all went before it was read.
var errWatchGone = errors.New("edge: presence watch ended before it was read")

// presenceReaders bounds the batched direct gets one round of the loader
// has in flight.
const presenceReaders = 4

// loader reads the state of the fresh watches from the bucket: each round
// takes every watch queued since the last one.
func (p *presence) loader() {
	defer p.stopped.Done()
	for {
		select {
		case <-p.loadNow:
		case <-p.done:
			return
		}
		p.mu.Lock()
		ws := p.loadq
		p.loadq = nil
		p.mu.Unlock()
		if len(ws) > 0 {
			p.loadRound(ws)
		}
	}
}

// loadRound subscribes to the events of ws and flushes (the server has
// the subscriptions before the bucket is read: no event falls between the
// read and the first event), then reads ws, presenceReadChunk users per
// direct get.
func (p *presence) loadRound(ws []*watch) {
	ws = p.subscribe(ws)
	if len(ws) == 0 {
		return
	}
	if err := p.nc.FlushTimeout(5 * time.Second); err != nil {
		p.failLoad(ws, fmt.Errorf("edge: presence read: %w", err))
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, presenceReaders)
	for i := 0; i < len(ws); i += presenceReadChunk {
		part := ws[i:min(i+presenceReadChunk, len(ws))]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.load(ctx, part); err != nil {
				p.failLoad(part, err)
			}
		})
	}
	wg.Wait()
}

// subscribe subscribes to the events of each of ws and returns those
// still watched; a watch whose subscribe failed fails. One whose last
// session went meanwhile (unwatch found no subscription to drop) has its
// subscription dropped here.
func (p *presence) subscribe(ws []*watch) []*watch {
	subs := make([]*nats.Subscription, len(ws))
	var failed []*watch
	var ferr error
	for i, w := range ws {
		sub, err := p.nc.ChanSubscribe(subjects.Presence(w.user), p.ch)
		if err != nil {
			failed = append(failed, w)
			ferr = fmt.Errorf("edge: subscribe %s: %w", subjects.Presence(w.user), err)
			continue
		}
		subs[i] = sub
	}
	var gone []*nats.Subscription
	live := ws[:0:0]
	p.mu.Lock()
	for i, w := range ws {
		switch {
		case subs[i] == nil:
		case p.watched[w.user] != w:
			gone = append(gone, subs[i])
			if !w.loaded { // nobody waits for it; end it all the same
				w.loaded, w.loadErr = true, errWatchGone
				close(w.ready)
			}
		default:
			w.sub = subs[i]
			live = append(live, w)
		}
	}
	p.mu.Unlock()
	for _, sub := range gone {
		_ = sub.Unsubscribe()
	}
	if len(failed) > 0 {
		p.failLoad(failed, ferr)
	}
	return live
}

// failLoad ends the watches of ws whose read failed: their sessions get
// err, and a later subscribe starts a new watch.
func (p *presence) failLoad(ws []*watch, err error) {
	p.log.Warn("presence: read", "users", len(ws), "err", err)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range ws {
		if w.loaded {
			continue
		}
		w.loaded, w.pending, w.loadErr = true, nil, err
		if p.watched[w.user] == w {
			if w.sub != nil {
				_ = w.sub.Unsubscribe()
			}
			delete(p.watched, w.user)
		}
		close(w.ready)
	}
}

// unwatch stops s watching users; an edge's subscription to a user goes
// with the last session watching it.
func (p *presence) unwatch(s *session, users []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range users {
		if _, ok := s.watching[u]; !ok {
			continue
		}
		delete(s.watching, u)
		w := p.watched[u]
		if w == nil {
			continue // its read failed
		}
		if _, ok := w.sessions[s]; !ok {
			continue // a watch that replaced the failed one s had
		}
		delete(w.sessions, s)
		if len(w.sessions) == 0 {
			if w.sub != nil { // else the loader has not subscribed yet: it drops it
				_ = w.sub.Unsubscribe()
			}
			delete(p.watched, u)
		}
	}
}

// unwatchAll stops s watching anybody (the session ended). Safe on nil.
func (p *presence) unwatchAll(s *session) {
	if p == nil {
		return
	}
	p.mu.Lock()
	users := make([]string, 0, len(s.watching))
	for u := range s.watching {
		users = append(users, u)
	}
	p.mu.Unlock()
	p.unwatch(s, users)
}

// markLoaded applies the events that came while ws loaded and makes ws
// ready.
func (p *presence) markLoaded(ws []*watch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range ws {
		if w.loaded {
			continue
		}
		for _, ev := range w.pending {
			p.apply(w, ev)
		}
		w.pending = nil
		w.loaded = true
		w.online = w.state().Online
		close(w.ready)
	}
}

// load reads the presence state of ws from the bucket: one batched direct
// get (multi_last) per presenceReadChunk users.
func (p *presence) load(ctx context.Context, ws []*watch) error {
	byUser := make(map[string]*watch, len(ws))
	for _, w := range ws {
		byUser[w.user] = w
	}
	type kvState struct {
		edges    []string
		lastSeen int64
		hidden   bool
		blocks   []string
	}
	got := map[string]*kvState{}
	for i := 0; i < len(ws); i += presenceReadChunk {
		part := ws[i:min(i+presenceReadChunk, len(ws))]
		filters := make([]string, 0, 4*len(part))
		for _, w := range part {
			filters = append(filters,
				subjects.KVSubject(subjects.BucketPresence, subjects.PresenceOnKeys(w.user)),
				subjects.KVSubject(subjects.BucketPresence, subjects.PresenceSeenKey(w.user)),
				subjects.KVSubject(subjects.BucketPresence, subjects.PresenceHiddenKey(w.user)),
				subjects.KVSubject(subjects.BucketPresence, subjects.PresenceBlockKey(w.user)))
		}
		err := kvbatch.MultiLast(ctx, p.nc, p.directGet, filters, func(m *nats.Msg) {
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				return // deleted, purged or expired
			}
			key := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), "$KV."+subjects.BucketPresence+".")
			kind, rest, _ := strings.Cut(key, ".")
			user, edge, _ := strings.Cut(rest, ".")
			if byUser[user] == nil {
				return
			}
			st := got[user]
			if st == nil {
				st = &kvState{}
				got[user] = st
			}
			switch kind {
			case "on":
				st.edges = append(st.edges, edge)
			case "seen":
				st.lastSeen, _ = strconv.ParseInt(string(m.Data), 10, 64)
			case "hide":
				st.hidden = string(m.Data) == "1"
			case "block":
				st.blocks = blocks.Decode(m.Data)
			}
		})
		if err != nil {
			return fmt.Errorf("edge: presence read: %w", err)
		}
	}
	p.mu.Lock()
	for user, st := range got {
		w := byUser[user]
		for _, edge := range st.edges {
			if p.touch(edge, false) {
				w.edges[edge] = struct{}{}
			}
		}
		w.lastSeen = max(w.lastSeen, st.lastSeen)
		w.hidden = st.hidden
		w.setBlocks(st.blocks)
	}
	p.mu.Unlock()
	p.markLoaded(ws)
	return nil
}

// presenceSet answers presence.set: it stores the user's hidden setting
// and tells the watching edges.
func (e *Edge) presenceSet(ctx context.Context, user string, hidden bool) (any, error) {
	m := &nats.Msg{Subject: subjects.KVSubject(subjects.BucketPresence, subjects.PresenceHiddenKey(user)), Data: []byte("1"), Header: nats.Header{}}
	if !hidden {
		m.Data = nil
		m.Header.Set("KV-Operation", "DEL")
	}
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(presenceEvent{Hidden: &hidden})
	if err := e.presence.nc.Publish(subjects.Presence(user), data); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
