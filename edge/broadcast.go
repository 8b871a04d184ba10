package edge

import (
	"hash/maphash"

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
	if len(b.targets) == 0 {
		return
	}
	// Outside the shard locks: a full queue closes its session, which
	// takes the lock to remove it.
	frames := pushFrames(entries)
	for _, s := range b.targets {
		if s.enqueueAll(frames) {
			h.m.pushes.Add(float64(len(frames)))
		}
	}
	clear(b.targets)
	b.targets = b.targets[:0]
}
