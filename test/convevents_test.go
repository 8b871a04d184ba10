package test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// nextConvFrame reads frames until the next conv push (of any
// conversation); other frames are skipped.
func (c *rawConn) nextConvFrame() protocol.ConvFrame {
	c.t.Helper()
	for {
		if f := c.next(); f.T == protocol.FrameConv {
			return *f.Conv
		}
	}
}

// devicesOf dials user once on every edge of m: two devices on two edges.
func devicesOf(t *testing.T, m *mesh, user string) []*rawConn {
	t.Helper()
	var out []*rawConn
	for _, e := range m.edges {
		out = append(out, mustDial(t, e, user))
	}
	return out
}

// expectConv checks that the next conv push of every device is want.
func expectConv(t *testing.T, who string, devices []*rawConn, want protocol.ConvFrame) {
	t.Helper()
	for i, d := range devices {
		if got := d.nextConvFrame(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s device %d: conv push %+v, want %+v", who, i, got, want)
		}
	}
}

// TestConvEventsPushed: with two edges and two devices per user (one on
// each edge), a group's creation is pushed to every member (added,
// created), a member change to the users it names (added, removed) and to
// the rest of the group (members_added, members_removed, with the users,
// their number and the member count), a rename to every member (renamed),
// a member's leaving to themselves (removed) and the rest; every push
// carries the group's rev, which grows by one per change. Nobody gets a
// push of a change in a group they are not in. After a reconnect that
// missed changes, sync shows the newer rev and conv.list and conv.get the
// same state the pushes told (name, member count, members).
func TestConvEventsPushed(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	alice, bob, carol, dave := devicesOf(t, m, "alice"), devicesOf(t, m, "bob"), devicesOf(t, m, "carol"), devicesOf(t, m, "dave")

	g := alice[0].createGroup("Team", "bob", "carol")
	created := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, By: "alice", Created: true}
	for who, ds := range map[string][]*rawConn{"alice": alice, "bob": bob, "carol": carol} {
		expectConv(t, who, ds, created)
	}

	alice[0].request("add", fmt.Sprintf(`{"op":"members.add","id":"add","conv":%q,"users":["dave","carol"]}`, g.ID), nil)
	expectConv(t, "dave", dave, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, Rev: 1, By: "alice"})
	added := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersAdded, Rev: 1, By: "alice", Users: []string{"dave"}, N: 1, MemberCount: 4}
	for who, ds := range map[string][]*rawConn{"alice": alice, "bob": bob, "carol": carol} {
		expectConv(t, who, ds, added)
	}

	alice[1].request("rm", fmt.Sprintf(`{"op":"members.remove","id":"rm","conv":%q,"users":["carol"]}`, g.ID), nil)
	expectConv(t, "carol", carol, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRemoved, Rev: 2, By: "alice"})
	removed := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersRemoved, Rev: 2, By: "alice", Users: []string{"carol"}, N: 1, MemberCount: 3}
	for who, ds := range map[string][]*rawConn{"alice": alice, "bob": bob, "dave": dave} {
		expectConv(t, who, ds, removed)
	}

	// dave's second device goes away and misses what follows.
	dave[1].conn.Close()
	dave = dave[:1]
	alice[0].request("ren", fmt.Sprintf(`{"op":"conv.rename","id":"ren","conv":%q,"name":"Team B"}`, g.ID), nil)
	renamed := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRenamed, Rev: 3, By: "alice", Name: "Team B"}
	for who, ds := range map[string][]*rawConn{"alice": alice, "bob": bob, "dave": dave} {
		expectConv(t, who, ds, renamed)
	}
	// The same name again changes nothing: no rev, no push.
	alice[1].request("ren2", fmt.Sprintf(`{"op":"conv.rename","id":"ren2","conv":%q,"name":"Team B"}`, g.ID), nil)

	bob[1].request("leave", fmt.Sprintf(`{"op":"members.remove","id":"leave","conv":%q,"users":["bob"]}`, g.ID), nil)
	expectConv(t, "bob", bob, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRemoved, Rev: 4, By: "bob"})
	left := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersRemoved, Rev: 4, By: "bob", Users: []string{"bob"}, N: 1, MemberCount: 2}
	for who, ds := range map[string][]*rawConn{"alice": alice, "dave": dave} {
		expectConv(t, who, ds, left)
	}

	// carol (removed) heard nothing of the rename and the leave: her next
	// conv push is of a new conversation.
	d := alice[0].createDirect("carol")
	expectConv(t, "carol", carol, protocol.ConvFrame{Conv: d.ID, Event: protocol.ConvAdded, By: "alice", Created: true})

	// dave's device comes back: sync shows the rev moved past the 2 it
	// knew; conv.list and conv.get bring the state the pushes told.
	back := mustDial(t, m.edges[1], "dave")
	var s protocol.SyncResult
	back.request("sy", `{"op":"sync","id":"sy","cursors":{}}`, &s)
	if len(s.Convs) != 1 || s.Convs[0].Conv != g.ID || s.Convs[0].Rev != 4 {
		t.Fatalf("dave's sync after the reconnect: %+v, want %s at rev 4", s.Convs, g.ID)
	}
	want := natter.Conversation{ID: g.ID, Kind: natter.KindGroup, Name: "Team B", CreatedBy: "alice", CreatedAt: g.CreatedAt,
		Members: []string{"alice", "dave"}, MemberCount: 2, Rev: 4, Owner: "alice"}
	var l protocol.ConvList
	back.request("ls", `{"op":"conv.list","id":"ls"}`, &l)
	if len(l.Convs) != 1 || !reflect.DeepEqual(l.Convs[0], want) {
		t.Fatalf("dave's conv.list: %+v, want %+v", l.Convs, want)
	}
	var got natter.Conversation
	back.request("get", fmt.Sprintf(`{"op":"conv.get","id":"get","conv":%q}`, g.ID), &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dave's conv.get: %+v, want %+v", got, want)
	}
	// The users who left see it no more.
	for who, c := range map[string]*rawConn{"bob": bob[0], "carol": carol[0]} {
		var s protocol.SyncResult
		c.request("sy", `{"op":"sync","id":"sy","cursors":{}}`, &s)
		for _, sc := range s.Convs {
			if sc.Conv == g.ID {
				t.Errorf("%s's sync lists the group they left: %+v", who, sc)
			}
		}
	}
}

func (c *rawConn) createDirect(with string) natter.Conversation {
	c.t.Helper()
	var conv natter.Conversation
	c.request("cd", fmt.Sprintf(`{"op":"conv.create","id":"cd","kind":"direct","with":%q}`, with), &conv)
	return conv
}

// TestConvEventsBigGroup: in a group of more than 1,000 members the pushes
// to the rest of the group travel as one broadcast by conversation on
// im.dlv.grp.all (none on the members' own subjects), and still reach every
// connected member on both edges but the users the change named (they get
// their own added or removed, and nothing else of that change); a batch of
// more users than a push names carries only their number.
func TestConvEventsBigGroup(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	alice, bob, zed := devicesOf(t, m, "alice"), devicesOf(t, m, "bob"), devicesOf(t, m, "zed")

	nc, err := nats.Connect(m.dev.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	broadcasts, err := nc.SubscribeSync(subjects.DeliverGroups)
	if err != nil {
		t.Fatal(err)
	}
	own, err := nc.SubscribeSync(subjects.Deliver("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	crowd := []string{"bob"}
	for i := range 999 {
		crowd = append(crowd, fmt.Sprintf("u%04d", i))
	}
	start := time.Now()
	g := alice[0].createGroup("Everyone", crowd...)
	t.Logf("group of %d members created in %v", len(crowd)+1, time.Since(start))
	created := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, By: "alice", Created: true}
	expectConv(t, "alice", alice, created)
	expectConv(t, "bob", bob, created)

	alice[0].request("add", fmt.Sprintf(`{"op":"members.add","id":"add","conv":%q,"users":["zed"]}`, g.ID), nil)
	expectConv(t, "zed", zed, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvAdded, Rev: 1, By: "alice"})
	added := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersAdded, Rev: 1, By: "alice", Users: []string{"zed"}, N: 1, MemberCount: 1002}
	expectConv(t, "alice", alice, added)
	expectConv(t, "bob", bob, added)

	alice[1].request("rm", fmt.Sprintf(`{"op":"members.remove","id":"rm","conv":%q,"users":["bob"]}`, g.ID), nil)
	expectConv(t, "bob", bob, protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRemoved, Rev: 2, By: "alice"})
	removed := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersRemoved, Rev: 2, By: "alice", Users: []string{"bob"}, N: 1, MemberCount: 1001}
	expectConv(t, "alice", alice, removed)
	expectConv(t, "zed", zed, removed) // zed's next push: not the members_added of his own joining

	// 101 users at once: named by their number only.
	var many []string
	for i := range 101 {
		many = append(many, fmt.Sprintf("v%04d", i))
	}
	b, _ := json.Marshal(many)
	alice[1].request("add2", fmt.Sprintf(`{"op":"members.add","id":"add2","conv":%q,"users":%s}`, g.ID, b), nil)
	many101 := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvMembersAdded, Rev: 3, By: "alice", N: 101, MemberCount: 1102}
	expectConv(t, "alice", alice, many101)
	expectConv(t, "zed", zed, many101)

	alice[0].request("ren", fmt.Sprintf(`{"op":"conv.rename","id":"ren","conv":%q,"name":"All hands"}`, g.ID), nil)
	renamed := protocol.ConvFrame{Conv: g.ID, Event: protocol.ConvRenamed, Rev: 4, By: "alice", Name: "All hands"}
	expectConv(t, "alice", alice, renamed)
	expectConv(t, "zed", zed, renamed)

	// Four changes, four broadcasts by conversation (the created pushes are
	// per member); nothing of the rest's pushes on alice's own subject.
	var signals []string
	for {
		msg, err := broadcasts.NextMsg(time.Second)
		if err != nil {
			break
		}
		if msg.Header.Get(delivery.SignalHeader) == delivery.SignalConv {
			var f protocol.ConvFrame
			_, _, _, frame, err := delivery.SplitSignal(msg)
			if err != nil || json.Unmarshal(frame, &f) != nil || f.Conv != g.ID {
				t.Fatalf("broadcast %q %s: %v", msg.Header, msg.Data, err)
			}
			signals = append(signals, f.Event)
		}
	}
	if want := []string{protocol.ConvMembersAdded, protocol.ConvMembersRemoved, protocol.ConvMembersAdded, protocol.ConvRenamed}; !slices.Equal(signals, want) {
		t.Fatalf("conv broadcasts %v, want %v", signals, want)
	}
	for {
		msg, err := own.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		if msg.Header.Get(delivery.SignalHeader) == delivery.SignalConv && !strings.Contains(string(msg.Data), `"created":true`) {
			t.Fatalf("a push to the rest of a big group went to alice's own subject: %s", msg.Data)
		}
	}
}

// TestConvRenameBadInput: conv.rename answers each documented code, on
// the WebSocket and through REST (PATCH /v1/conversations/{conv}), and
// changes nothing when it refuses.
func TestConvRenameBadInput(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice, eve := mustDial(t, m.dev, "alice"), mustDial(t, m.dev, "eve")
	g := alice.createGroup("Team", "bob")
	d := alice.createDirect("bob")
	for _, tc := range []struct {
		name  string
		c     *rawConn
		frame string
		code  protocol.Code
		msg   string
	}{
		{"non-member", eve, fmt.Sprintf(`{"op":"conv.rename","id":"r","conv":%q,"name":"Mine"}`, g.ID), protocol.CodeNotMember, ""},
		{"unknown conversation", alice, `{"op":"conv.rename","id":"r","conv":"g_doesnotexist","name":"X"}`, protocol.CodeNotMember, ""},
		{"direct conversation", alice, fmt.Sprintf(`{"op":"conv.rename","id":"r","conv":%q,"name":"X"}`, d.ID), protocol.CodeForbidden, ""},
		{"too long", alice, fmt.Sprintf(`{"op":"conv.rename","id":"r","conv":%q,"name":%q}`, g.ID, strings.Repeat("é", 129)), protocol.CodeBadFrame, "name: longer than 128 characters"},
		{"empty", alice, fmt.Sprintf(`{"op":"conv.rename","id":"r","conv":%q,"name":""}`, g.ID), protocol.CodeBadFrame, "name: required"},
		{"missing conv", alice, `{"op":"conv.rename","id":"r","name":"X"}`, protocol.CodeBadFrame, "conv: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.write(tc.frame)
			f := tc.c.reply("r")
			if f.T != protocol.FrameErr || f.Err.Code != tc.code || !strings.HasPrefix(f.Err.Msg, tc.msg) {
				t.Fatalf("%s: %+v %+v, want %s %q", tc.frame, f, f.Err, tc.code, tc.msg)
			}
		})
	}
	url := "http://" + m.dev.Addr() + "/v1/conversations/"
	if status, code, body := restCall(t, "PATCH", url+g.ID, token(t, "eve"), `{"name":"Mine"}`); status != 403 || code != "not_member" {
		t.Fatalf("REST rename by a non-member: %d %s", status, body)
	}
	if status, code, body := restCall(t, "PATCH", url+d.ID, token(t, "alice"), `{"name":"X"}`); status != 403 || code != "forbidden" {
		t.Fatalf("REST rename of a direct conversation: %d %s", status, body)
	}
	if status, code, body := restCall(t, "PATCH", url+g.ID, token(t, "alice"), `{"name":"`+strings.Repeat("x", 129)+`"}`); status != 400 || code != "bad_frame" {
		t.Fatalf("REST rename with a long name: %d %s", status, body)
	}
	var c natter.Conversation
	alice.request("get", fmt.Sprintf(`{"op":"conv.get","id":"get","conv":%q}`, g.ID), &c)
	if c.Name != "Team" || c.Rev != 0 {
		t.Fatalf("after refused renames: %+v, want Team at rev 0", c)
	}
	if status, code, body := restCall(t, "PATCH", url+g.ID, token(t, "bob"), `{"name":"Team 2"}`); status != 403 || code != "forbidden" {
		t.Fatalf("REST rename by a member (not an admin): %d %s", status, body)
	}
	if status, _, body := restCall(t, "PATCH", url+g.ID, token(t, "alice"), `{"name":"Team 2"}`); status != 200 || string(body) != "{}" {
		t.Fatalf("REST rename by the owner: %d %s", status, body)
	}
	alice.request("get2", fmt.Sprintf(`{"op":"conv.get","id":"get2","conv":%q}`, g.ID), &c)
	if c.Name != "Team 2" || c.Rev != 1 {
		t.Fatalf("after the REST rename: %+v, want Team 2 at rev 1", c)
	}
}
