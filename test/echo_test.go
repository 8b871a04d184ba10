package test

import (
	"fmt"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// TestNoEchoToSender: the connection that appends an entry (send, msg.edit,
// msg.delete) gets its ack and no push of it; the user's other connection
// (another device, on another edge) and the other member get the push.
// Each connection's pushes of one conversation come in seq order, so a
// push of a later entry proves the earlier one was not pushed.
func TestNoEchoToSender(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	a1 := mustDial(t, m.edges[0], "alice")
	a2 := mustDial(t, m.edges[1], "alice")
	bob := mustDial(t, m.edges[0], "bob")
	for _, kind := range []string{"direct", "group"} {
		var conv natter.Conversation
		if kind == "direct" {
			a1.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"bob"}`, &conv)
		} else {
			conv = a1.createGroup("echo", "bob")
		}
		var sent, edit, del natter.Ack
		a1.request("s1", fmt.Sprintf(`{"op":"send","id":"s1","conv":%q,"cmid":"c1","body":"mine"}`, conv.ID), &sent)
		a1.request("e1", fmt.Sprintf(`{"op":"msg.edit","id":"e1","conv":%q,"ref":%q,"cmid":"c2","body":"mine, fixed"}`, conv.ID, sent.ID), &edit)
		a1.request("d1", fmt.Sprintf(`{"op":"msg.delete","id":"d1","conv":%q,"ref":%q,"cmid":"c3"}`, conv.ID, sent.ID), &del)
		last := bob.send(conv.ID, "b1", "bob's")
		if last.Seq != del.Seq+1 || del.Seq != edit.Seq+1 || edit.Seq != sent.Seq+1 {
			t.Fatalf("%s: seqs %d %d %d %d", kind, sent.Seq, edit.Seq, del.Seq, last.Seq)
		}
		// a1: only bob's message.
		for {
			f := a1.next()
			if f.T != protocol.FrameMsg || f.Message.Conv != conv.ID {
				continue
			}
			if f.Message.Seq != last.Seq {
				t.Fatalf("%s: the sending connection got a push of its own entry: %+v", kind, f.Message)
			}
			break
		}
		// a2 and bob: all four, in order.
		for name, c := range map[string]*rawConn{"alice's other device": a2, "bob": bob} {
			got := c.collect(conv.ID, 4)
			if got[sent.Seq].Body != "mine" || got[edit.Seq].Type != natter.TypeEdit || got[del.Seq].Type != natter.TypeDelete || got[last.Seq].From != "bob" {
				t.Fatalf("%s, %s: got %+v", kind, name, got)
			}
		}
	}
}
