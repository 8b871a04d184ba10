package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/natter-im/natter/edge/protocol"
)

// syncLoop runs for the life of one connection: first a sync with every
// cursor (so nothing pushed while the client was away is missed: the edge
// subscribed the user's deliveries before its hello), then a sync whenever
// a conversation has a gap, one request at a time, and every tick the
// auto-acks. It closes synced when the first sync has completed. It
// returns when the connection ends.
func (c *Client) syncLoop(cn *conn, tick <-chan time.Time, synced chan struct{}) {
	// Every wait below also ends with the connection (roundTrip watches
	// cn.done), so no context is needed.
	ctx := context.Background()
	full, stalls := true, 0
	for {
		select {
		case <-tick:
			c.onTick(ctx, cn)
		default:
		}
		if cn.isDone() || c.quitting() {
			return
		}
		if full || c.needsSync() {
			progress, err := c.syncRound(ctx, cn, full)
			switch {
			case cn.isDone() || c.quitting() || errors.Is(err, errDisconnected):
				return
			case err != nil:
				c.log.Warn("sync failed", "err", err, "session", cn.hello.Session)
				stalls++
			case progress || !c.needsSync():
				full, stalls = false, 0
			default:
				// The reply did not move a conversation that still has a
				// gap: do not hammer the edge.
				c.log.Debug("sync made no progress", "session", cn.hello.Session)
				full, stalls = false, stalls+1
			}
			if !full && synced != nil {
				close(synced)
				synced = nil
			}
			if stalls > 0 && !c.pause(c.backoff(stalls-1), cn.done) {
				return
			}
			continue
		}
		select {
		case <-c.wake:
		case <-tick:
			c.onTick(ctx, cn)
		case <-cn.done:
			return
		case <-c.quit:
			return
		}
	}
}

// syncPageSize is the page size of the full sync's pages.
const syncPageSize = protocol.MaxPageSize

// syncRound sends one sync (in as many requests as the cursors need) and
// applies the replies. A full sync pages through the user's conversations
// (syncPages).
func (c *Client) syncRound(ctx context.Context, cn *conn, full bool) (progress bool, err error) {
	if full {
		return c.syncPages(ctx, cn)
	}
	all := func(string) bool { return true }
	for _, cursors := range c.cursorChunks(cursorsPerSync(cn.hello.MaxBody)) {
		req := protocol.Request{Op: protocol.OpSync, Cursors: cursors, Limit: c.cfg.SyncLimit}
		epoch := c.convEpoch()
		f, _, err := c.roundTrip(ctx, cn, &req)
		if err != nil {
			return progress, err
		}
		if f.Err != nil {
			return progress, &Error{Op: protocol.OpSync, Code: f.Err.Code, Msg: f.Err.Msg}
		}
		var res protocol.SyncResult
		if err := json.Unmarshal(f.Data, &res); err != nil {
			return progress, fmt.Errorf("client: sync: decoding reply: %w", err)
		}
		c.stats.syncs.Add(1)
		if c.applySync(cursors, &res, all, true) {
			progress = true
		}
		c.applyConvs(&res, epoch, all, true)
	}
	return progress, nil
}

// syncPages sends a full sync, page after page of the user's conversations
// (in id order), each naming the cursors of the conversations the client
// knows from where the page starts on (as many as fit a page and a frame),
// and applies each reply to the part of the list it covers. The first
// full sync of the client ends with its last page.
func (c *Client) syncPages(ctx context.Context, cn *conn) (progress bool, err error) {
	per := min(cursorsPerSync(cn.hello.MaxBody), syncPageSize)
	page, after := "", ""
	for {
		cursors := c.cursorsAfter(after, per)
		req := protocol.Request{Op: protocol.OpSync, Cursors: cursors, Limit: c.cfg.SyncLimit, PageSize: syncPageSize, Page: page}
		epoch := c.convEpoch()
		f, _, err := c.roundTrip(ctx, cn, &req)
		if err != nil {
			return progress, err
		}
		if f.Err != nil {
			return progress, &Error{Op: protocol.OpSync, Code: f.Err.Code, Msg: f.Err.Msg}
		}
		var res protocol.SyncResult
		if err := json.Unmarshal(f.Data, &res); err != nil {
			return progress, fmt.Errorf("client: sync: decoding reply: %w", err)
		}
		c.stats.syncs.Add(1)
		last := res.Next == ""
		hi := ""
		if n := len(res.Convs); n > 0 {
			hi = res.Convs[n-1].Conv
		}
		from := after
		covers := func(conv string) bool { return conv > from && (last || conv <= hi) }
		if c.applySync(cursors, &res, covers, last) {
			progress = true
		}
		c.applyConvs(&res, epoch, covers, last)
		if last {
			c.firstOnce.Do(func() { close(c.first) })
			return progress, nil
		}
		next, _, ok := protocol.ParsePage(res.Next)
		if !ok || next <= after {
			return progress, fmt.Errorf("client: sync: bad next page %q after %q", res.Next, after)
		}
		page, after = res.Next, next
	}
}

// cursorsPerSync bounds the cursors of one sync request so that the frame
// stays under the edge's frame limit (max_body + 4 KiB): a cursor takes at
// most 64 (id) + 24 (quotes, colon, 20 digits, comma) bytes.
func cursorsPerSync(maxBody int) int {
	if maxBody <= 0 {
		maxBody = protocol.DefaultMaxBody
	}
	return max(1, (maxBody+protocol.FrameOverhead-256)/88)
}

func (c *Client) onTick(ctx context.Context, cn *conn) {
	c.checkLag()
	if c.cfg.AutoAck > 0 {
		c.sendAcks(ctx, cn, maxAcksPerTick)
	}
}

// sendAcks reports up to n delivered cursors (all when n <= 0) that moved.
func (c *Client) sendAcks(ctx context.Context, cn *conn, n int) {
	for _, a := range c.ackable(n) {
		req := protocol.Request{Op: protocol.OpAck, Conv: a.conv, Seq: a.seq}
		f, _, err := c.roundTrip(ctx, cn, &req)
		if err != nil {
			return // tried again next tick (or on the next connection)
		}
		if f.Err != nil {
			if f.Err.Code.Retryable() {
				return
			}
			// not_member and the like: do not try again.
			c.log.Debug("ack refused", "conv", a.conv, "code", f.Err.Code, "msg", f.Err.Msg)
		} else {
			c.stats.acks.Add(1)
		}
		c.acked(a.conv, a.seq)
	}
}
