package edge

import (
	"context"
	"errors"
	"hash/maphash"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/delivery"
)

// broadcaster holds a broadcast dispatcher's buffers, kept from one
// broadcast to the next so that a broadcast allocates nothing per member.
type broadcaster struct {
	byShard [hubShards][][]byte // the listed members, by hub shard
	targets []*session
}

// dispatchBroadcasts delivers the broadcasts of ch (subjects.DeliverGroups)
// until stop.
func (h *hub) dispatchBroadcasts(ch chan *nats.Msg) {
	var b broadcaster
	for {
		select {
		case m := <-ch:
			h.broadcast(m, &b)
		case <-h.done:
			return
		}
	}
}

// broadcast queues the entries of one broadcast on every session of its
// listed members that this edge holds, as deliver does for one user. The
// members are sorted by shard first, so that each shard's lock is taken
// once per broadcast, not once per member; a member with no session here
// costs a map lookup. The push frames are made once, and only when some
// member is here.
func (h *hub) broadcast(m *nats.Msg, b *broadcaster) {
	if conv, kind, except, frame, err := delivery.SplitSignal(m); conv != "" || err != nil {
		if err == nil {
			err = h.broadcastSignal(conv, kind, except, frame, b)
		}
		if err != nil {
			h.m.badDeliveries.Inc()
		}
		return
	}
	if conv, entries, err := delivery.SplitConv(m); conv != "" || err != nil {
		if err == nil {
			err = h.broadcastConv(m.Header, conv, entries, b)
		}
		if err != nil {
			h.m.badDeliveries.Inc()
		}
		return
	}
	members, entries, err := delivery.SplitMembers(m)
	if err != nil {
		// At most once: the clients' seq gaps and syncs repair it.
		h.m.badDeliveries.Inc()
		return
	}
	for id := range members.All() {
		i := maphash.Bytes(h.seed, id) % hubShards // = h.shard(string(id))
		b.byShard[i] = append(b.byShard[i], id)
	}
	h.collect(b)
	h.pushTraced(m.Header, entries, b) // = h.push when not traced
}

// collect moves the sessions of the users listed in b.byShard to
// b.targets, taking each shard's lock once.
func (h *hub) collect(b *broadcaster) {
	for i := range b.byShard {
		ids := b.byShard[i]
		if len(ids) == 0 {
			continue
		}
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, id := range ids {
			if e := sh.users[string(id)]; e != nil {
				b.targets = append(b.targets, e.sessions...)
			}
		}
		sh.mu.Unlock()
		clear(ids) // they point into the message's data
		b.byShard[i] = ids[:0]
	}
}

// push queues the entries on b.targets, then empties it. It runs outside
// the shard locks: a full queue closes its session, which takes the lock
// to remove it. The push frames are made only when some target is here.
func (h *hub) push(entries [][]byte, b *broadcaster) {
	if len(b.targets) == 0 {
		return
	}
	frames := pushFrames(entries)
	for _, s := range b.targets {
		if n := s.enqueuePushes(frames); n > 0 {
			h.m.pushes.Add(float64(n))
		}
	}
	clear(b.targets)
	b.targets = b.targets[:0]
}

// broadcastLoad bounds the member lookup of one broadcast addressed by
// conversation (a miss loads the list from the conversations service).
const broadcastLoad = 5 * time.Second

// broadcastConv queues the entries of a broadcast addressed by conversation
// (a group too large to list in every message) on every session here of its
// members. The members come from the edge's member cache; it walks the
// smaller of the member list and the users connected here, so a message
// into a group of 100,000 with a few members online here costs as many map
// lookups as there are users here.
func (h *hub) broadcastConv(hdr nats.Header, conv string, entries [][]byte, b *broadcaster) error {
	if err := h.collectConv(conv, nil, b); err != nil {
		return err
	}
	h.pushTraced(hdr, entries, b) // = h.push when not traced
	return nil
}

// collectConv moves the sessions here of the members of conv, but those in
// except, to b.targets, walking the smaller of the member list (from the
// member cache) and the users connected here.
func (h *hub) collectConv(conv string, except map[string]struct{}, b *broadcaster) error {
	if h.members == nil {
		return errors.New("edge: no member cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), broadcastLoad)
	set, err := h.members.Set(ctx, conv)
	cancel()
	if err != nil {
		return err
	}
	if int64(set.Len()) <= h.users.Load() {
		for _, id := range set.All() {
			if _, skip := except[id]; skip {
				continue
			}
			i := maphash.String(h.seed, id) % hubShards
			b.byShard[i] = append(b.byShard[i], []byte(id))
		}
		h.collect(b)
		return nil
	}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for user, e := range sh.users {
			if _, skip := except[user]; !skip && set.Has(user) {
				b.targets = append(b.targets, e.sessions...)
			}
		}
		sh.mu.Unlock()
	}
	return nil
}

// broadcastSignal queues the frame of a signal broadcast (a conv push to
// the members of a large group, delivery.PackSignal) as it is on every
// session here of the conversation's members but those it lists as
// except (they got a frame of their own). Only conv signals travel so.
func (h *hub) broadcastSignal(conv, kind string, except delivery.Members, frame []byte, b *broadcaster) error {
	if kind != delivery.SignalConv || len(frame) == 0 || frame[0] != '{' {
		return errors.New("edge: not a conv signal")
	}
	var skip map[string]struct{}
	if len(except) > 0 {
		skip = make(map[string]struct{}, except.Len())
		for id := range except.All() {
			skip[string(id)] = struct{}{}
		}
	}
	if err := h.collectConv(conv, skip, b); err != nil {
		return err
	}
	for _, s := range b.targets {
		if s.enqueue(frame) {
			h.m.convPushes.Inc()
		}
	}
	clear(b.targets)
	b.targets = b.targets[:0]
	return nil
}
