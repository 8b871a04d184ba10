package test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// inOrder reads pushes until seq to of conv, failing unless they are from,
// from+1, ... to (none twice, none out of order). Other frames are kept for
// next().
func (c *rawConn) inOrder(conv string, from, to uint64) {
	c.t.Helper()
	for i, next := 0, from; next <= to; {
		if c.ownSeq(conv, next) { // sent here: no push, the ack was it
			next++
			continue
		}
		if i == len(c.pending) {
			f, err := c.read()
			if err != nil {
				c.t.Fatalf("read (waiting for seq %d of %s): %v", next, conv, err)
			}
			c.pending = append(c.pending, f)
		}
		f := c.pending[i]
		if f.T != protocol.FrameMsg || f.Message.Conv != conv {
			i++
			continue
		}
		if f.Message.Seq != next {
			c.t.Fatalf("push of seq %d of %s, want %d", f.Message.Seq, conv, next)
		}
		c.pending = append(c.pending[:i], c.pending[i+1:]...)
		next++
	}
}

// TestGroupBroadcast: with a broadcast minimum of 4, a group of 6 members
// over two edges (one member with a device on each) gets every message
// exactly once per device and in order, and the fan-out publishes nothing
// for it on the members' own subjects (a raw subscriber on im.dlv.* sees
// none of it, one on the broadcast subject sees it); a group of 3 still goes
// member by member.
func TestGroupBroadcast(t *testing.T) {
	t.Parallel()
	dev := startNode(t, node.Config{Mode: node.ModeDev, FanoutBroadcastMin: 4})
	e2 := startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: dev.NATSURL()})
	edges := []*node.Node{dev, e2}

	nc := testenv.Connect(t, dev.NATSURL())
	var mu sync.Mutex
	perUser := map[string]map[string]int{} // conv -> user -> entries seen on im.dlv.<user>
	broadcasts := map[string]int{}         // conv -> broadcast messages
	record := func(m *nats.Msg) {
		if m.Header.Get(delivery.SignalHeader) != "" {
			return // a signal (the conv pushes of the creates), not messages
		}
		mu.Lock()
		defer mu.Unlock()
		var (
			entries [][]byte
			err     error
		)
		if m.Subject == subjects.DeliverGroups {
			_, es, err := delivery.SplitMembers(m)
			if err != nil {
				t.Errorf("broadcast: %v", err)
				return
			}
			entries = es
		} else if entries, err = delivery.Split(m); err != nil {
			t.Errorf("delivery on %s: %v", m.Subject, err)
			return
		}
		for _, e := range entries {
			var msg natter.Message
			if err := json.Unmarshal(e, &msg); err != nil {
				t.Errorf("entry on %s: %v", m.Subject, err)
				return
			}
			if m.Subject == subjects.DeliverGroups {
				broadcasts[msg.Conv]++
				continue
			}
			if perUser[msg.Conv] == nil {
				perUser[msg.Conv] = map[string]int{}
			}
			perUser[msg.Conv][subjects.UserFromDeliver(m.Subject)]++
		}
	}
	for _, subj := range []string{subjects.DeliverAll, subjects.DeliverGroups} {
		if _, err := nc.Subscribe(subj, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	owner := mustDial(t, dev, "owner")
	big := []string{"b1", "b2", "b3", "b4", "b5"}
	devices := []*rawConn{owner}
	for i, u := range big {
		devices = append(devices, mustDial(t, edges[i%2], u))
	}
	devices = append(devices, mustDial(t, e2, "owner")) // owner's second device, on the other edge
	small := []string{"s1", "s2"}
	smallDevices := []*rawConn{mustDial(t, e2, "s1"), mustDial(t, dev, "s2")}
	bigGroup := owner.createGroup("big", big...)
	smallGroup := owner.createGroup("small", small...)

	const n = 12
	for i := range n {
		sender := devices[i%len(devices)]
		sender.send(bigGroup.ID, fmt.Sprint("b", i), fmt.Sprint("big ", i))
		sender = []*rawConn{owner, smallDevices[0], smallDevices[1]}[i%3]
		sender.send(smallGroup.ID, fmt.Sprint("s", i), fmt.Sprint("small ", i))
	}
	for _, d := range devices {
		d.inOrder(bigGroup.ID, 1, n)
	}
	for _, d := range append(smallDevices, owner) {
		d.inOrder(smallGroup.ID, 1, n)
	}
	// One more: the next push of the group is this one, not a late copy.
	owner.send(bigGroup.ID, "last", "last")
	for _, d := range devices {
		d.inOrder(bigGroup.ID, n+1, n+1)
	}

	// Every small-group member's subject carried all n; the big group's
	// went by broadcast only.
	testenv.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range append(small, "owner") {
			if got := perUser[smallGroup.ID][u]; got != n {
				return fmt.Errorf("small group: %d entries on %s, want %d", got, subjects.Deliver(u), n)
			}
		}
		if got := broadcasts[bigGroup.ID]; got != n+1 {
			return fmt.Errorf("big group: %d entries broadcast, want %d", got, n+1)
		}
		return nil
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := perUser[bigGroup.ID]; len(got) != 0 {
		t.Fatalf("big group published per member: %v", got)
	}
	if got := broadcasts[smallGroup.ID]; got != 0 {
		t.Fatalf("small group broadcast %d entries", got)
	}
}
