package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// request sends a frame and waits for its reply, which must be res.
func (c *rawConn) request(id, frame string, out any) {
	c.t.Helper()
	c.write(frame)
	f := c.reply(id)
	if f.T != protocol.FrameRes {
		c.t.Fatalf("request %s: %+v", frame, f.Err)
	}
	if out != nil {
		if err := json.Unmarshal(f.Data, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *rawConn) createGroup(name string, members ...string) natter.Conversation {
	c.t.Helper()
	var conv natter.Conversation
	b, _ := json.Marshal(members)
	c.request("cg", fmt.Sprintf(`{"op":"conv.create","id":"cg","kind":"group","name":%q,"members":%s}`, name, b), &conv)
	return conv
}

func (c *rawConn) send(conv, cmid, body string) natter.Ack {
	c.t.Helper()
	var ack natter.Ack
	c.request("s-"+cmid, fmt.Sprintf(`{"op":"send","id":"s-%s","conv":%q,"cmid":%q,"body":%q}`, cmid, conv, cmid, body), &ack)
	if !ack.Dup {
		if c.own == nil {
			c.own = map[string][]natter.Message{}
		}
		c.own[conv] = append(c.own[conv], natter.Message{ID: ack.ID, Conv: conv, Seq: ack.Seq, From: c.user, Cmid: cmid, Type: natter.TypeText, Body: body, TS: ack.TS})
	}
	return ack
}

// ownSeq reports whether seq of conv is a message this connection sent
// (with send), and forgets it.
func (c *rawConn) ownSeq(conv string, seq uint64) bool {
	for i, m := range c.own[conv] {
		if m.Seq == seq {
			c.own[conv] = append(c.own[conv][:i], c.own[conv][i+1:]...)
			return true
		}
	}
	return false
}

// collect reads pushes until n messages of conv arrived (in any order),
// returning them by seq.
func (c *rawConn) collect(conv string, n int) map[uint64]natter.Message {
	c.t.Helper()
	got := map[uint64]natter.Message{}
	for _, m := range c.own[conv] {
		got[m.Seq] = m
	}
	delete(c.own, conv)
	for len(got) < n {
		f := c.next()
		if f.T == protocol.FrameMsg && f.Message.Conv == conv {
			if _, dup := got[f.Message.Seq]; dup {
				c.t.Fatalf("push of seq %d twice", f.Message.Seq)
			}
			got[f.Message.Seq] = *f.Message
		}
	}
	return got
}

// TestAcrossEdgesAndDevices: two edges, two worker processes besides the dev
// node; users on different edges exchange direct and group messages, and a
// user with two devices on two edges gets every message on both.
func TestAcrossEdgesAndDevices(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, workers: 1})
	e1, e2 := m.edges[0], m.edges[1]
	alice := mustDial(t, e1, "alice")
	bobPhone := mustDial(t, e1, "bob")
	bobLaptop := mustDial(t, e2, "bob")
	carol := mustDial(t, e2, "carol")

	var direct natter.Conversation
	alice.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"carol"}`, &direct)
	group := alice.createGroup("team", "bob", "carol")

	if ack := alice.send(direct.ID, "d1", "hi carol"); ack.Seq != 1 {
		t.Fatalf("direct ack %+v", ack)
	}
	if ack := carol.send(direct.ID, "d2", "hi alice"); ack.Seq != 2 {
		t.Fatalf("direct reply ack %+v", ack)
	}
	if got := carol.collect(direct.ID, 2); got[1].Body != "hi carol" || got[2].From != "carol" {
		t.Fatalf("carol got %+v", got)
	}
	if got := alice.collect(direct.ID, 2); got[2].Body != "hi alice" || got[2].From != "carol" {
		t.Fatalf("alice got %+v", got)
	}

	const n = 20
	for i := 0; i < n; i++ {
		sender := []*rawConn{alice, bobPhone, carol}[i%3]
		sender.send(group.ID, fmt.Sprint("g", i), fmt.Sprint("group message ", i))
	}
	for name, c := range map[string]*rawConn{"alice": alice, "bob phone (edge 1)": bobPhone, "bob laptop (edge 2)": bobLaptop, "carol": carol} {
		got := c.collect(group.ID, n)
		for seq := uint64(1); seq <= n; seq++ {
			if got[seq].Body != fmt.Sprint("group message ", seq-1) {
				t.Fatalf("%s: seq %d = %+v", name, seq, got[seq])
			}
		}
	}
}

// TestConcurrentSendersOrder: 50 senders at once in one conversation, over
// two edges and two fan-out replicas. Seqs are exactly 1..N, every member
// sees the same message at each seq, and each sender's messages keep its
// order.
func TestConcurrentSendersOrder(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, workers: 1})
	const senders, each = 50, 10
	users := make([]string, senders)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	owner := mustDial(t, m.edges[0], "owner")
	group := owner.createGroup("crowd", users...)
	watchers := []*rawConn{owner, mustDial(t, m.edges[1], "u0"), mustDial(t, m.edges[0], "u1")}

	conns := make([]*rawConn, senders)
	for i, u := range users {
		conns[i] = mustDial(t, m.edges[i%2], u)
	}
	acks := make([][]natter.Ack, senders)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := conns[i]
			// Pipelined: all frames written at once; the edge keeps a socket's order.
			for k := 0; k < each; k++ {
				c.write(fmt.Sprintf(`{"op":"send","id":"s%d","conv":%q,"cmid":"u%d-%d","body":"u%d-%d"}`, k, group.ID, i, k, i, k))
			}
			for k := 0; k < each; k++ {
				f := c.reply(fmt.Sprint("s", k))
				if f.T != protocol.FrameRes {
					t.Errorf("sender %d send %d: %+v", i, k, f.Err)
					return
				}
				var a natter.Ack
				_ = json.Unmarshal(f.Data, &a)
				acks[i] = append(acks[i], a)
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := senders * each
	seen := map[uint64]bool{}
	for i, as := range acks {
		for k, a := range as {
			if seen[a.Seq] {
				t.Fatalf("seq %d given twice", a.Seq)
			}
			seen[a.Seq] = true
			if k > 0 && a.Seq <= as[k-1].Seq {
				t.Fatalf("sender %d: send %d got seq %d after %d", i, k, a.Seq, as[k-1].Seq)
			}
		}
	}
	for s := uint64(1); s <= uint64(total); s++ {
		if !seen[s] {
			t.Fatalf("gap: seq %d missing", s)
		}
	}
	var first map[uint64]natter.Message
	for w, c := range watchers {
		got := c.collect(group.ID, total)
		if w == 0 {
			first = got
			continue
		}
		for s, msg := range got {
			if first[s].ID != msg.ID {
				t.Fatalf("watcher %d sees %s at seq %d, watcher 0 sees %s", w, msg.ID, s, first[s].ID)
			}
		}
	}
	// Each sender's order in the delivered log.
	last := map[string]uint64{}
	seqs := make([]uint64, 0, total)
	for s := range first {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	for _, s := range seqs {
		msg := first[s]
		var u, k int
		fmt.Sscanf(msg.Body, "u%d-%d", &u, &k)
		key := fmt.Sprint(u)
		if k > 0 && last[key] != uint64(k) {
			t.Fatalf("sender %d: message %d delivered before message %d", u, k, last[key])
		}
		last[key] = uint64(k + 1)
	}
}

// TestRetrySameCmid retries a send with the same client message id on the
// same edge, on another edge, and after the JetStream dedup window has
// passed: one stored copy, the same id and seq every time.
func TestRetrySameCmid(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, streams: streams.Config{DedupWindow: 100 * time.Millisecond}})
	a1 := mustDial(t, m.edges[0], "alice")
	a2 := mustDial(t, m.edges[1], "alice")
	var conv natter.Conversation
	a1.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"bob"}`, &conv)

	first := a1.send(conv.ID, "retry-me", "once")
	a1.send(conv.ID, "other", "another message")
	check := func(how string, ack natter.Ack) {
		t.Helper()
		if ack.ID != first.ID || ack.Seq != first.Seq || !ack.Dup {
			t.Fatalf("%s: %+v, want id %s seq %d dup", how, ack, first.ID, first.Seq)
		}
	}
	check("same edge", a1.send(conv.ID, "retry-me", "once"))
	check("other edge", a2.send(conv.ID, "retry-me", "once"))

	js := testenv.JetStream(t, testenv.Connect(t, m.dev.NATSURL()))
	waitDedupWindow(t, js)
	check("after the dedup window", a2.send(conv.ID, "retry-me", "once"))

	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		n, err := m.dev.Store().CountMessages(context.Background(), conv.ID)
		if err != nil || n != 2 {
			return fmt.Errorf("stored %d (%v), want 2", n, err)
		}
		return nil
	})
	s, _ := js.Stream(context.Background(), subjects.StreamMsgs)
	info, _ := s.Info(context.Background(), jetstream.WithSubjectFilter(subjects.Msg(conv.ID)))
	if got := info.State.Subjects[subjects.Msg(conv.ID)]; got != 2 {
		t.Fatalf("log holds %d entries for the conversation, want 2", got)
	}
}

// waitDedupWindow publishes a probe with its own message id until MSGS no
// longer reports it as a duplicate: by then every id stored before is
// forgotten by JetStream too.
func waitDedupWindow(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	probe := fmt.Sprint("probe-", time.Now().UnixNano())
	ctx := context.Background()
	if _, err := js.Publish(ctx, subjects.Msg("probe"), nil, jetstream.WithMsgID(probe)); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		pa, err := js.Publish(ctx, subjects.Msg("probe"), nil, jetstream.WithMsgID(probe))
		if err != nil {
			return err
		}
		if pa.Duplicate {
			return errors.New("dedup window not passed yet")
		}
		return nil
	})
}
