package client

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// convState is the delivery state of one conversation.
type convState struct {
	next      uint64 // seq of the next message to emit: cursor + 1
	seen      uint64 // highest seq known to exist (from pushes and sync replies)
	delivered uint64 // highest seq handed to the Messages channel
	acked     uint64 // highest seq the edge confirmed in an ack
	known     bool   // next is set; false for pushes that came before the first sync
	left      bool   // the user is no longer a member: a sync reply left it out
	buf       map[uint64]natter.Message
	state     ReadState // from the last sync reply that listed it
}

// ReadState is a conversation's state as the last sync reply gave it.
type ReadState struct {
	// Head is the newest seq.
	Head uint64
	// Read is the user's read cursor (the last seq marked read on any
	// device, or sent by the user) and Unread is Head - Read.
	Read, Unread uint64
	// Acked is this device's delivered cursor on the server.
	Acked uint64
}

// delivery turns pushes and sync replies into one gap-free, duplicate-free
// stream per conversation. Everything is guarded by mu. An emitted message
// goes straight into the Messages channel when nothing is waiting before it
// and the channel has room (no goroutine hand-off); otherwise it waits in
// queue for the pump, which hands the queue over in order.
type delivery struct {
	mu     sync.Mutex
	convs  map[string]*convState
	first  bool                // the first sync reply has been applied
	dirty  map[string]struct{} // known conversations with seen >= next: they need a sync
	lagNew map[string]uint64   // heads ahead of next in sync replies that did not name the conversation
	lagOld map[string]uint64   // the same, one tick older
	// unreadTotal is the user's unread count over every conversation, as
	// the last full sync (or its last page) gave it.
	unreadTotal uint64
	queue       []natter.Message
	queued      atomic.Int64 // in queue or being handed over by the pump
	busy        bool         // the pump is handing over messages taken from queue
	closed      bool         // the Messages channel is closed
}

func (d *delivery) init(cursors map[string]uint64) {
	d.convs = make(map[string]*convState, len(cursors))
	d.dirty = make(map[string]struct{})
	d.lagNew = make(map[string]uint64)
	d.lagOld = make(map[string]uint64)
	for conv, cur := range cursors {
		d.convs[conv] = &convState{next: cur + 1, seen: cur, delivered: cur, acked: cur, known: true}
	}
}

// onPush takes a msg push from the reader.
func (c *Client) onPush(m *natter.Message) {
	c.stats.pushes.Add(1)
	if m.Seq == 0 || m.Conv == "" {
		return
	}
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.convs[m.Conv]
	if st == nil {
		// A conversation this client has not heard of. After the first sync
		// it is new (created, or the user was added, since): it starts at 0.
		// Before, the first sync decides where it starts.
		st = &convState{}
		d.convs[m.Conv] = st
		if d.first {
			c.start(st, 0)
		}
	}
	st.left = false
	if c.accept(st, m, false) {
		c.stats.gaps.Add(1)
	}
	c.markDirty(m.Conv, st)
}

// onOwn takes the ack of an entry this client appended (a send, an edit
// or a delete): the edge pushes it to the user's other connections, not to
// the one that appended it (docs/protocol.md, "msg"). With m, the entry as
// the log holds it, it is delivered as a push would be. Without (nil: a
// retry of a stored entry, whose first attempt may have differed, or a
// message with attachments, whose metadata the edge filled in), seq is
// marked as existing, so that a sync fetches it.
func (c *Client) onOwn(conv string, seq uint64, m *natter.Message) {
	if seq == 0 || conv == "" {
		return
	}
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.convs[conv]
	if st == nil {
		st = &convState{}
		d.convs[conv] = st
		if d.first {
			c.start(st, 0)
		}
	}
	if m != nil {
		c.accept(st, m, false)
	} else {
		st.seen = max(st.seen, seq)
	}
	c.markDirty(conv, st)
}

// ownEntry is the log entry of a send, edit or delete of user (req) that
// got ack, as the edge's push would carry it; nil when the client cannot
// know it (see [Client.onOwn]).
func ownEntry(user string, req *protocol.Request, ack natter.Ack) *natter.Message {
	if ack.Dup || len(req.Attachments) > 0 || user == "" {
		return nil
	}
	m := &natter.Message{ID: ack.ID, Conv: req.Conv, Seq: ack.Seq, From: user, Cmid: req.Cmid, Type: req.Type,
		Body: req.Body, Ref: req.Ref, ReplyTo: req.ReplyTo, Thread: req.Thread, TS: ack.TS}
	switch req.Op {
	case protocol.OpMsgEdit:
		m.Type = natter.TypeEdit
	case protocol.OpMsgDelete:
		m.Type, m.Body = natter.TypeDelete, ""
	}
	if m.Type == "" {
		m.Type = natter.TypeText // as the log stores it
	}
	if len(req.Mentions) > 0 {
		m.Mentions = slices.Clone(req.Mentions)
	}
	return m
}

// accept applies one message, pushed or synced: a duplicate is dropped, the
// next one is emitted with every buffered successor, a later one is
// buffered until the gap is filled. It reports whether m came early.
func (c *Client) accept(st *convState, m *natter.Message, synced bool) (early bool) {
	st.seen = max(st.seen, m.Seq)
	switch {
	case st.known && m.Seq < st.next:
		c.stats.duplicates.Add(1)
	case !st.known || m.Seq > st.next:
		if _, dup := st.buf[m.Seq]; dup {
			c.stats.duplicates.Add(1)
			return false
		}
		// Past the limit the push is dropped: seen remembers it, so a sync
		// fetches it again.
		if len(st.buf) < maxConvBuffer {
			if st.buf == nil {
				st.buf = make(map[uint64]natter.Message)
			}
			st.buf[m.Seq] = *m
		}
		return st.known
	default:
		c.emit(st, m, synced)
		st.next++
		c.drain(st)
	}
	return false
}

// drain emits buffered messages that are next in line and drops stale ones.
func (c *Client) drain(st *convState) {
	for len(st.buf) > 0 {
		m, ok := st.buf[st.next]
		if !ok {
			break
		}
		delete(st.buf, st.next)
		c.emit(st, &m, false)
		st.next++
	}
	if len(st.buf) == 0 {
		st.buf = nil
		return
	}
	for seq := range st.buf {
		if seq < st.next {
			delete(st.buf, seq)
			c.stats.duplicates.Add(1)
		}
	}
}

// skipCleared moves a known conversation past the messages up to cleared,
// which the user cleared ("clear history for me", on any device) or the
// retention policy removed: the edge sends none of them, so waiting for
// them would stall it. d.mu is held.
func (c *Client) skipCleared(st *convState, cleared uint64) {
	if !st.known || cleared < st.next {
		return
	}
	st.next = cleared + 1
	st.delivered = max(st.delivered, cleared)
	st.seen = max(st.seen, cleared)
	c.drain(st)
}

// start sets where a conversation the client did not know starts: after
// seq cursor.
func (c *Client) start(st *convState, cursor uint64) {
	st.known = true
	st.next, st.delivered, st.acked = cursor+1, cursor, cursor
	c.drain(st)
}

// emit hands m, the next message of st, to the application: into the
// Messages channel at once when no earlier message is still waiting and
// the channel has room, else through the pump.
func (c *Client) emit(st *convState, m *natter.Message, synced bool) {
	d := &c.d
	c.stats.delivered.Add(1)
	if synced {
		c.stats.synced.Add(1)
	}
	if len(d.queue) == 0 && !d.busy && !d.closed && len(c.msgs) < cap(c.msgs) {
		select {
		case c.msgs <- *m:
			st.delivered = max(st.delivered, m.Seq)
			return
		default:
		}
	}
	d.queue = append(d.queue, *m)
	d.queued.Add(1)
	signal(c.qsig)
}

// markDirty records whether the conversation needs a sync and wakes the
// sync loop when it does.
func (c *Client) markDirty(conv string, st *convState) {
	if st.known && !st.left && st.seen >= st.next {
		if _, ok := c.d.dirty[conv]; !ok {
			c.d.dirty[conv] = struct{}{}
			signal(c.wake)
		}
		return
	}
	delete(c.d.dirty, conv)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// applySync applies one sync reply to the request's cursors sent. covers
// says which conversation ids the reply's part of the list covers (a named
// one in it that the reply leaves out is one the user left); last says the
// reply ends its sync (the first sync of the client ends with it). It
// reports whether any named conversation moved forward.
func (c *Client) applySync(sent map[string]uint64, res *protocol.SyncResult, covers func(string) bool, last bool) (progress bool) {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	first := !d.first
	listed := make(map[string]struct{}, len(res.Convs))
	for i := range res.Convs {
		sc := &res.Convs[i]
		listed[sc.Conv] = struct{}{}
		st := d.convs[sc.Conv]
		if st == nil {
			st = &convState{}
			d.convs[sc.Conv] = st
		}
		st.state = ReadState{Head: sc.Head, Read: sc.Read, Unread: sc.Unread, Acked: sc.Acked}
		_, named := sent[sc.Conv]
		if st.left {
			st.left, named = false, true // the user was added again
		}
		if !st.known {
			// The first sync starts conversations the application has no
			// cursor for at their head (or at 0 with FromStart); any later
			// one is new and starts at 0.
			var from uint64
			if first && !c.cfg.FromStart {
				from = sc.Head
				if sc.Acked > 0 {
					// This device acked before (a reinstalled app with
					// its device id): resume after its delivered cursor.
					from = min(sc.Acked, sc.Head)
				}
			}
			c.start(st, from)
			named = true
		}
		before := st.next
		if sc.Settings != nil {
			c.skipCleared(st, sc.Settings.Cleared)
		}
		if sc.Floor > 1 {
			// The retention policy removed what lay below: never coming.
			c.skipCleared(st, sc.Floor-1)
		}
		if named {
			st.seen = max(st.seen, sc.Head)
		} else if sc.Head >= st.next {
			// Probably a push on its way; checked again after a tick.
			d.lagNew[sc.Conv] = max(d.lagNew[sc.Conv], sc.Head)
		}
		for j := range sc.Msgs {
			c.accept(st, &sc.Msgs[j], true)
		}
		if st.next > before {
			progress = true
		}
		c.markDirty(sc.Conv, st)
	}
	for conv := range sent {
		if _, ok := listed[conv]; !ok && covers(conv) {
			if st := d.convs[conv]; st != nil {
				st.left = true
				delete(d.dirty, conv)
			}
		}
	}
	if res.UnreadTotal != nil {
		d.unreadTotal = *res.UnreadTotal
	}
	if first && last {
		// Pushed before the first sync but not in its list: new since.
		for conv, st := range d.convs {
			if !st.known {
				c.start(st, 0)
				c.markDirty(conv, st)
			}
		}
		d.first = true
	}
	return progress
}

// cursorChunks returns the cursors of the conversations that need a sync,
// cut into requests of at most per conversations.
func (c *Client) cursorChunks(per int) []map[string]uint64 {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var chunks []map[string]uint64
	var cur map[string]uint64
	for conv := range d.dirty {
		if cur == nil || len(cur) >= per {
			cur = make(map[string]uint64, min(per, len(d.dirty)))
			chunks = append(chunks, cur)
		}
		cur[conv] = d.convs[conv].next - 1
	}
	return chunks
}

func (c *Client) needsSync() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return len(c.d.dirty) > 0
}

// checkLag marks conversations dirty whose head, seen in a sync reply at
// least one tick ago, has still not been delivered: a push went missing.
func (c *Client) checkLag() {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for conv, head := range d.lagOld {
		if st := d.convs[conv]; st != nil && st.known && st.next <= head {
			st.seen = max(st.seen, head)
			c.markDirty(conv, st)
		}
	}
	clear(d.lagOld)
	d.lagOld, d.lagNew = d.lagNew, d.lagOld
}

type ackItem struct {
	conv string
	seq  uint64
}

// ackable lists up to n conversations (all when n <= 0) whose delivered
// cursor moved past what the edge has acked.
func (c *Client) ackable(n int) []ackItem {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ackItem
	for conv, st := range d.convs {
		if st.delivered > st.acked && !st.left {
			out = append(out, ackItem{conv, st.delivered})
			if n > 0 && len(out) >= n {
				break
			}
		}
	}
	return out
}

func (c *Client) acked(conv string, seq uint64) {
	c.d.mu.Lock()
	if st := c.d.convs[conv]; st != nil {
		st.acked = max(st.acked, seq)
	}
	c.d.mu.Unlock()
}

// pump hands queued messages to the Messages channel in order and closes
// it when the client stops.
func (c *Client) pump() {
	defer c.wg.Done()
	d := &c.d
	defer func() {
		d.mu.Lock()
		d.closed = true
		close(c.msgs)
		d.mu.Unlock()
	}()
	var batch []natter.Message
	for {
		d.mu.Lock()
		batch, d.queue = d.queue, batch[:0]
		d.busy = len(batch) > 0
		d.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-c.qsig:
				continue
			case <-c.quit:
				return
			}
		}
		for i := range batch {
			select {
			case c.msgs <- batch[i]:
			case <-c.quit:
				return
			}
			d.mu.Lock()
			if st := d.convs[batch[i].Conv]; st != nil {
				st.delivered = max(st.delivered, batch[i].Seq)
			}
			d.mu.Unlock()
			if d.queued.Add(-1) <= int64(c.cfg.MaxPending) {
				signal(c.room)
			}
		}
		clear(batch)
	}
}

// waitRoom blocks the reader while the application is more than
// Config.MaxPending messages behind.
func (c *Client) waitRoom() {
	for c.d.queued.Load() > int64(c.cfg.MaxPending) {
		select {
		case <-c.room:
		case <-c.quit:
			return
		}
	}
}

// Cursors returns, per conversation, the highest seq handed to the
// Messages channel (or the starting cursor, when nothing was delivered
// yet). Persist them and pass them as Config.Cursors on the next Dial to
// resume where the application left off. Conversations the user has left
// are not included.
func (c *Client) Cursors() map[string]uint64 {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.convs))
	for conv, st := range d.convs {
		if st.known && !st.left {
			out[conv] = st.delivered
		}
	}
	return out
}

// ReadState returns conv's head, read cursor, unread count and this
// device's delivered cursor as the last sync reply that listed conv gave
// them (each reconnect syncs; [Client.MarkRead] and new messages change
// them only at the next sync).
func (c *Client) ReadState(conv string) (ReadState, bool) {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.convs[conv]
	if st == nil || !st.known || st.left {
		return ReadState{}, false
	}
	return st.state, true
}

// UnreadTotal returns the user's unread count over every conversation as
// the last full sync gave it.
func (c *Client) UnreadTotal() uint64 {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.d.unreadTotal
}

// cursorsAfter returns the cursors of the conversations the client knows
// (and has not left) whose ids come after after, the first n in id order.
func (c *Client) cursorsAfter(after string, n int) map[string]uint64 {
	d := &c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.convs))
	for conv, st := range d.convs {
		if st.known && !st.left && conv > after {
			ids = append(ids, conv)
		}
	}
	slices.Sort(ids)
	out := make(map[string]uint64, min(n, len(ids)))
	for _, conv := range ids[:min(n, len(ids))] {
		out[conv] = d.convs[conv].next - 1
	}
	return out
}
