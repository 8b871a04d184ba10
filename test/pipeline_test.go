package test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// TestPipelinedSendsOverWebSockets: alice writes 30 sends on each of two
// connections (on two edges) to her direct conversation with bob, and 30
// over three groups on a third connection, each connection writing its
// frames without waiting for replies (10 per socket write). Every send is
// answered once with a result; each connection's sends to a conversation
// get seqs in the order written; bob gets every message of the direct
// conversation once, seqs 1..60 without a gap; each of alice's
// connections gets the other's messages pushed and none of its own.
func TestPipelinedSendsOverWebSockets(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	a1 := mustDial(t, m.edges[0], "alice")
	a2 := mustDial(t, m.edges[1], "alice")
	a3 := mustDial(t, m.edges[0], "alice")
	bob := mustDial(t, m.edges[1], "bob")
	direct := a1.createDirect("bob")
	groups := []natter.Conversation{a3.createGroup("p1", "bob"), a3.createGroup("p2", "bob"), a3.createGroup("p3", "bob")}
	// 30 per connection: fewer than the ids a session keeps for its
	// echoes (16 + the send window), so that none of its own pushes is
	// let through however late the deliveries come.
	const n = 30
	type sent struct {
		conn, id, conv, cmid string
	}
	plan := map[string][]sent{}
	for _, c := range []string{"a1", "a2", "a3"} {
		for k := range n {
			conv := direct.ID
			if c == "a3" {
				conv = groups[(k/4)%len(groups)].ID // runs of four, then the next group
			}
			id := fmt.Sprintf("%s-%d", c, k)
			plan[c] = append(plan[c], sent{c, id, conv, "k" + id})
		}
	}
	conns := map[string]*rawConn{"a1": a1, "a2": a2, "a3": a3}
	acks := map[string]natter.Ack{}
	var wg sync.WaitGroup
	for name, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < n; k += 10 {
				var buf []byte
				for _, s := range plan[name][k:min(k+10, n)] {
					buf = append(buf, maskedText(fmt.Sprintf(`{"op":"send","id":%q,"conv":%q,"cmid":%q,"body":%q,"first":true}`, s.id, s.conv, s.cmid, "body "+s.id))...)
				}
				if _, err := c.conn.NetConn().Write(buf); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The replies, read on this goroutine: each connection's in turn
	// (pushes are kept for next()).
	for name, c := range conns {
		for _, s := range plan[name] {
			f := c.reply(s.id)
			if f.T != protocol.FrameRes {
				t.Fatalf("%s: reply %+v", s.id, f.Err)
			}
			var ack natter.Ack
			if err := json.Unmarshal(f.Data, &ack); err != nil {
				t.Fatal(err)
			}
			if ack.Dup || ack.Seq == 0 {
				t.Fatalf("%s: ack %+v", s.id, ack)
			}
			acks[s.id] = ack
		}
	}
	last := map[string]uint64{}
	for _, name := range []string{"a1", "a2", "a3"} {
		for _, s := range plan[name] {
			k := name + "/" + s.conv
			if a := acks[s.id]; a.Seq <= last[k] {
				t.Fatalf("%s: seq %d after %d on %s: out of written order", s.id, a.Seq, last[k], k)
			}
			last[k] = acks[s.id].Seq
		}
	}
	// bob: the direct conversation's 60, once each, 1..60.
	got := bob.collect(direct.ID, 2*n)
	for seq := uint64(1); seq <= 2*n; seq++ {
		if _, ok := got[seq]; !ok {
			t.Fatalf("bob: no seq %d of %d (got %d messages)", seq, 2*n, len(got))
		}
	}
	// a1 and a2: the other's 30 pushed, none of their own.
	for _, pair := range [][2]string{{"a1", "a2"}, {"a2", "a1"}} {
		c, other := conns[pair[0]], pair[1]
		want := map[uint64]bool{}
		for _, s := range plan[other] {
			want[acks[s.id].Seq] = true
		}
		for len(want) > 0 {
			f := c.next()
			if f.T != protocol.FrameMsg || f.Message.Conv != direct.ID {
				continue
			}
			if f.Message.Cmid[1:3] == pair[0] {
				t.Fatalf("%s got a push of its own send %s", pair[0], f.Message.Cmid)
			}
			if !want[f.Message.Seq] {
				t.Fatalf("%s: push of seq %d twice or unexpected", pair[0], f.Message.Seq)
			}
			delete(want, f.Message.Seq)
		}
	}
}

// maskedText frames s as one final, masked client text frame (RFC 6455
// section 5.2) with the zero mask key, which leaves the payload as it is.
func maskedText(s string) []byte {
	b := []byte{0x81}
	switch n := len(s); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("frame too long")
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, s...)
}
