package test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// mustDialDevice dials user's device on n and reads the hello.
func mustDialDevice(t testing.TB, n *node.Node, user, device string) *rawConn {
	t.Helper()
	hdr := bearer(token(t, user))
	hdr.Set(protocol.HeaderDevice, device)
	c, resp, err := dialRaw(t, wsURL(n), hdr)
	if err != nil {
		t.Fatalf("dial %s/%s: %v (%v)", user, device, err, resp)
	}
	if f := c.next(); f.T != protocol.FrameHello || f.Hello.User != user || f.Hello.Device != device {
		t.Fatalf("want hello for %s/%s, got %+v", user, device, f)
	}
	return c
}

var reqID int64

var reqMu sync.Mutex

func nextID() string {
	reqMu.Lock()
	defer reqMu.Unlock()
	reqID++
	return fmt.Sprint("u", reqID)
}

// syncAll pages through sync {} with page size (0: one unpaged sync) and
// returns the conversations by id, checking that every page holds at most
// size, that the pages come in id order without repeats, and that only the
// last one carries unread_total, which it returns.
func (c *rawConn) syncAll(size int) (map[string]protocol.SyncConv, uint64) {
	c.t.Helper()
	out := map[string]protocol.SyncConv{}
	page, last := "", ""
	var sum uint64
	for {
		id := nextID()
		frame := fmt.Sprintf(`{"op":"sync","id":%q,"page_size":%d,"page":%q}`, id, size, page)
		if size == 0 {
			frame = fmt.Sprintf(`{"op":"sync","id":%q}`, id)
		}
		var res protocol.SyncResult
		c.request(id, frame, &res)
		if size > 0 && len(res.Convs) > size {
			c.t.Fatalf("a page of %d conversations, page_size %d", len(res.Convs), size)
		}
		for _, sc := range res.Convs {
			if sc.Conv <= last {
				c.t.Fatalf("conversation %s after %s: pages out of order", sc.Conv, last)
			}
			last = sc.Conv
			out[sc.Conv] = sc
			sum += sc.Unread
		}
		if res.Next == "" {
			if res.UnreadTotal == nil {
				c.t.Fatalf("the last page has no unread_total: %+v", res)
			}
			if *res.UnreadTotal != sum {
				c.t.Fatalf("unread_total %d, the pages' unread add up to %d", *res.UnreadTotal, sum)
			}
			return out, sum
		}
		if res.UnreadTotal != nil {
			c.t.Fatalf("a page before the last has unread_total: %+v", res)
		}
		page = res.Next
	}
}

// listAll pages through conv.list like syncAll.
func (c *rawConn) listAll(size int) map[string]natter.Conversation {
	c.t.Helper()
	out := map[string]natter.Conversation{}
	page, last := "", ""
	for {
		id := nextID()
		frame := fmt.Sprintf(`{"op":"conv.list","id":%q,"page_size":%d,"page":%q}`, id, size, page)
		if size == 0 {
			frame = fmt.Sprintf(`{"op":"conv.list","id":%q}`, id)
		}
		var res protocol.ConvList
		c.request(id, frame, &res)
		if size > 0 && len(res.Convs) > size {
			c.t.Fatalf("a page of %d conversations, page_size %d", len(res.Convs), size)
		}
		for _, cv := range res.Convs {
			if cv.ID <= last {
				c.t.Fatalf("conversation %s after %s: pages out of order", cv.ID, last)
			}
			last = cv.ID
			out[cv.ID] = cv
		}
		if res.Next == "" {
			return out
		}
		page = res.Next
	}
}

// wantState is what sync and conv.list must say of one conversation.
type wantState struct{ head, read, acked uint64 }

// checkState polls (sync and conv.list, paged by 1 and unpaged) until c's
// view of every conversation of want is as wanted, and the total is the
// sum of the unread counts.
func (c *rawConn) checkState(want map[string]wantState) {
	c.t.Helper()
	testenv.CheckFor(c.t, 15*time.Second, 50*time.Millisecond, func() error {
		var total uint64
		for _, w := range want {
			total += unreadOf(w.head, w.read)
		}
		for _, size := range []int{0, 1} {
			got, sum := c.syncAll(size)
			if len(got) != len(want) {
				return fmt.Errorf("sync (page_size %d) lists %d conversations, want %d", size, len(got), len(want))
			}
			for conv, w := range want {
				sc := got[conv]
				if sc.Head != w.head || sc.Read != w.read || sc.Acked != w.acked || sc.Unread != unreadOf(w.head, w.read) {
					return fmt.Errorf("sync (page_size %d) %s: head %d read %d unread %d acked %d, want head %d read %d unread %d acked %d",
						size, conv, sc.Head, sc.Read, sc.Unread, sc.Acked, w.head, w.read, unreadOf(w.head, w.read), w.acked)
				}
			}
			if sum != total {
				return fmt.Errorf("sync (page_size %d): unread_total %d, want %d", size, sum, total)
			}
			list := c.listAll(size)
			for conv, w := range want {
				cv := list[conv]
				if cv.Head != w.head || cv.Read != w.read || cv.Unread != unreadOf(w.head, w.read) {
					return fmt.Errorf("conv.list (page_size %d) %s: head %d read %d unread %d, want head %d read %d unread %d",
						size, conv, cv.Head, cv.Read, cv.Unread, w.head, w.read, unreadOf(w.head, w.read))
				}
			}
		}
		return nil
	})
}

func unreadOf(head, read uint64) uint64 {
	if read >= head {
		return 0
	}
	return head - read
}

// TestUserStateAcrossEdgesAndDevices: alice, bob and carol have two devices
// each on two edges. While bob's two devices and carol's send into a group
// at once, and bob into his direct conversation with alice, every user's
// sync and conv.list (paged and not) show the exact head, read cursor and
// unread count of each conversation, and the total: a read on one device
// shows on the other, a user's own send marks the conversation read up to
// it, and each device gets its own delivered cursor (ack) back, also after
// a reconnect.
func TestUserStateAcrossEdgesAndDevices(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	e1, e2 := m.edges[0], m.edges[1]
	dev := map[string][2]*rawConn{}
	for _, u := range []string{"alice", "bob", "carol"} {
		dev[u] = [2]*rawConn{mustDialDevice(t, e1, u, u+"-phone"), mustDialDevice(t, e2, u, u+"-laptop")}
	}
	a1, a2 := dev["alice"][0], dev["alice"][1]
	g := a1.createGroup("team", "bob", "carol")
	var d natter.Conversation
	dev["bob"][0].request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"alice"}`, &d)

	// Concurrent senders: bob on both devices and carol into the group,
	// bob into the direct conversation.
	const each = 10
	var mu sync.Mutex
	last := map[string]uint64{} // each sender's newest seq in g
	var wg sync.WaitGroup
	send := func(c *rawConn, user, conv, prefix string) {
		for i := range each {
			ack := c.send(conv, fmt.Sprintf("%s-%d", prefix, i), "hi")
			if conv == g.ID {
				mu.Lock()
				last[user] = max(last[user], ack.Seq)
				mu.Unlock()
			}
		}
	}
	// Each connection sends on its own goroutine (a connection's replies
	// are read by one reader at a time).
	wg.Go(func() { send(dev["bob"][0], "bob", g.ID, "b0") })
	wg.Go(func() { send(dev["bob"][1], "bob", g.ID, "b1") })
	wg.Go(func() { send(dev["carol"][1], "carol", g.ID, "c1") })
	wg.Wait()
	send(dev["bob"][0], "bob", d.ID, "bd")
	if t.Failed() {
		t.FailNow()
	}
	head := uint64(3 * each)

	// alice never read: everything is unread, on both devices; bob and
	// carol have read up to their own newest message.
	want := map[string]wantState{g.ID: {head: head}, d.ID: {head: each}}
	a1.checkState(want)
	a2.checkState(want)
	dev["bob"][1].checkState(map[string]wantState{g.ID: {head: head, read: last["bob"]}, d.ID: {head: each, read: each}})
	dev["carol"][0].checkState(map[string]wantState{g.ID: {head: head, read: last["carol"]}})

	// alice reads the group up to 12 on her laptop and acks on each
	// device: the phone sees the read and its own ack only.
	a2.request("r", fmt.Sprintf(`{"op":"read","id":"r","conv":%q,"seq":12}`, g.ID), nil)
	a1.request("k1", fmt.Sprintf(`{"op":"ack","id":"k1","conv":%q,"seq":5}`, g.ID), nil)
	a2.request("k2", fmt.Sprintf(`{"op":"ack","id":"k2","conv":%q,"seq":30}`, g.ID), nil)
	a2.request("k3", fmt.Sprintf(`{"op":"ack","id":"k3","conv":%q,"seq":3}`, d.ID), nil)
	a1.checkState(map[string]wantState{g.ID: {head: head, read: 12, acked: 5}, d.ID: {head: each}})
	a2.checkState(map[string]wantState{g.ID: {head: head, read: 12, acked: 30}, d.ID: {head: each, acked: 3}})

	// alice sends from her phone: her read cursor moves to her message
	// (never back: an older read after it changes nothing); then bob and
	// carol send again at once, which is what she has not read.
	ack := a1.send(g.ID, "a-1", "me too")
	a2.request("r2", fmt.Sprintf(`{"op":"read","id":"r2","conv":%q,"seq":13}`, g.ID), nil)
	a2.checkState(map[string]wantState{g.ID: {head: ack.Seq, read: ack.Seq, acked: 30}, d.ID: {head: each, acked: 3}})
	wg.Go(func() { send(dev["bob"][1], "bob", g.ID, "b2") })
	wg.Go(func() { send(dev["carol"][0], "carol", g.ID, "c2") })
	wg.Wait()
	head = ack.Seq + 2*each
	a2.checkState(map[string]wantState{g.ID: {head: head, read: ack.Seq, acked: 30}, d.ID: {head: each, acked: 3}})

	// A reconnected phone (and a reinstalled app: the same device id)
	// gets the same state, its own ack included.
	_ = a1.conn.Close()
	a1 = mustDialDevice(t, e2, "alice", "alice-phone")
	a1.checkState(map[string]wantState{g.ID: {head: head, read: ack.Seq, acked: 5}, d.ID: {head: each}})
}

// TestSyncPagesBadInput: out-of-range page sizes and page tokens that are
// not a reply's next are refused with bad_frame naming the field, never
// clamped; a page after the last conversation is empty and ends the list.
func TestSyncPagesBadInput(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	c := mustDial(t, m.dev, "alice")
	c.createGroup("one", "bob")
	for _, tt := range []struct{ frame, msg string }{
		{`{"op":"sync","id":"b1","page_size":501}`, "page_size: must be 1..500 (0 or absent: no paging)"},
		{`{"op":"conv.list","id":"b2","page_size":-3}`, "page_size: must be 1..500 (0 or absent: no paging)"},
		{`{"op":"sync","id":"b3","page":"g_1"}`, "page: needs page_size"},
		{`{"op":"conv.list","id":"b4","page_size":2,"page":"g_1.-4"}`, "page: must be the next of the previous reply"},
		{`{"op":"sync","id":"b5","page_size":2,"page":"no/such"}`, "page: must be the next of the previous reply"},
		{`{"op":"sync","id":"b6","page_size":"2"}`, "page_size: must be an integer"},
	} {
		id := tt.frame[strings.Index(tt.frame, `"id":"`)+6:]
		id = id[:strings.Index(id, `"`)]
		c.write(tt.frame)
		f := c.reply(id)
		if f.T != protocol.FrameErr || f.Err.Code != protocol.CodeBadFrame || f.Err.Msg != tt.msg {
			t.Errorf("%s: got %+v, want bad_frame %q", tt.frame, f.Err, tt.msg)
		}
	}
	var res protocol.SyncResult
	c.request("z", `{"op":"sync","id":"z","page_size":5,"page":"zzz.7"}`, &res)
	if len(res.Convs) != 0 || res.Next != "" || res.UnreadTotal == nil || *res.UnreadTotal != 7 {
		t.Fatalf("a page after the last conversation: %+v", res)
	}
	// REST: the same bounds on GET /v1/conversations.
	req, _ := http.NewRequest(http.MethodGet, "http://"+m.dev.Addr()+"/v1/conversations?page_size=0&page=g_1", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("REST page without page_size: status %d", resp.StatusCode)
	}
}
