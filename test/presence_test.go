package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// nextOf reads frames until one of type typ, failing after 10s of silence.
func (c *rawConn) nextOf(typ string) *protocol.ServerFrame {
	c.t.Helper()
	for {
		if f := c.next(); f.T == typ {
			return f
		}
	}
}

// presenceOf reads frames until a presence push about user.
func (c *rawConn) presenceOf(user string) protocol.PresenceState {
	c.t.Helper()
	for {
		f := c.nextOf(protocol.FramePresence)
		if f.Presence.User == user {
			return *f.Presence
		}
	}
}

func (c *rawConn) subscribe(id string, users ...string) protocol.PresenceResult {
	c.t.Helper()
	list, _ := json.Marshal(users)
	var res protocol.PresenceResult
	c.request(id, fmt.Sprintf(`{"op":"presence.sub","id":%q,"users":%s}`, id, list), &res)
	return res
}

// TestPresenceAcrossEdgesAndDevices: bob has two devices on two edges;
// alice (on a third connection) watches him. bob is online while either
// device is connected, offline with last_seen when both have gone, and
// hidden when he hides presence.
func TestPresenceAcrossEdgesAndDevices(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	e1, e2 := m.edges[0], m.edges[1]
	alice := mustDial(t, e1, "alice")
	alice2 := mustDial(t, e2, "alice") // a second device, on the other edge
	alice.createGroup("pals", "bob")

	// bob is offline: the reply says so.
	if res := alice.subscribe("s1", "bob"); len(res.Users) != 1 || res.Users[0].Online {
		t.Fatalf("bob before connecting: %+v", res)
	}
	alice2.subscribe("s2", "bob")

	bob1 := mustDial(t, e1, "bob")
	for _, c := range []*rawConn{alice, alice2} {
		if st := c.presenceOf("bob"); !st.Online {
			t.Fatalf("bob connected, push %+v", st)
		}
	}
	bob2 := mustDial(t, e2, "bob")
	// A subscriber that comes now reads the state from the bucket.
	carol := mustDial(t, e2, "carol")
	bob2.request("g2", `{"op":"conv.create","id":"g2","kind":"direct","with":"carol"}`, nil)
	if res := carol.subscribe("s3", "bob"); !res.Users[0].Online {
		t.Fatalf("carol's subscribe: %+v", res)
	}

	// One device goes: bob stays online (no push); the other goes: offline.
	_ = bob1.conn.Close()
	// Wait until bob1's edge has taken its lease back (one is left), so
	// that a push it caused would be out before the second close.
	nc := testenv.Connect(t, m.dev.NATSURL())
	kv, err := testenv.JetStream(t, nc).KeyValue(ctx10(t), subjects.BucketPresence)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		lister, err := kv.ListKeysFiltered(ctx10(t), subjects.PresenceOnKeys("bob"))
		if err != nil {
			return err
		}
		n := 0
		for range lister.Keys() {
			n++
		}
		if n != 1 {
			return fmt.Errorf("%d leases of bob", n)
		}
		return nil
	})
	mid := time.Now().UnixMilli()
	_ = bob2.conn.Close()
	// The first push after bob came is this one: nothing came when one of
	// his two devices went.
	for _, c := range []*rawConn{alice, alice2, carol} {
		st := c.presenceOf("bob")
		if st.Online || st.LastSeen < mid {
			t.Fatalf("bob gone: push %+v (second close at %d)", st, mid)
		}
	}

	// bob comes back and hides: the watchers see him offline, without
	// last_seen; unhiding shows him online again.
	bob3 := mustDial(t, e1, "bob")
	for _, c := range []*rawConn{alice, alice2} {
		if st := c.presenceOf("bob"); !st.Online {
			t.Fatalf("bob back: %+v", st)
		}
	}
	bob3.request("h", `{"op":"presence.set","id":"h","hidden":true}`, nil)
	if st := alice2.presenceOf("bob"); st.Online || st.LastSeen != 0 {
		t.Fatalf("bob hidden: %+v", st)
	}
	dave := mustDial(t, e2, "dave")
	dave.request("g3", `{"op":"conv.create","id":"g3","kind":"direct","with":"bob"}`, nil)
	if res := dave.subscribe("s4", "bob"); res.Users[0].Online || res.Users[0].LastSeen != 0 {
		t.Fatalf("hidden bob read from the bucket: %+v", res)
	}
	bob3.request("u", `{"op":"presence.set","id":"u","hidden":false}`, nil)
	if st := dave.presenceOf("bob"); !st.Online {
		t.Fatalf("bob unhidden: %+v", st)
	}
}

// TestPresenceBadInput: every refused subscribe gets its code, and nothing
// is watched after one.
func TestPresenceBadInput(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	mustDial(t, m.dev, "carol")
	alice.createGroup("pals", "bob")

	many := make([]string, protocol.MaxPresenceUsers+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	manyJSON, _ := json.Marshal(many)
	cases := []struct {
		name, frame string
		code        protocol.Code
		msg         string
	}{
		{"non-member", `{"op":"presence.sub","id":"x","users":["bob","carol"]}`, protocol.CodeForbidden, "users[1]: carol shares no conversation"},
		{"unknown user", `{"op":"presence.sub","id":"x","users":["nobody-at-all"]}`, protocol.CodeForbidden, "users[0]: nobody-at-all shares no conversation"},
		{"bad user id", `{"op":"presence.sub","id":"x","users":["a b"]}`, protocol.CodeBadFrame, "users[0]:"},
		{"no users", `{"op":"presence.sub","id":"x","users":[]}`, protocol.CodeBadFrame, "users: required"},
		{"over the bound in one request", `{"op":"presence.sub","id":"x","users":` + string(manyJSON) + `}`, protocol.CodeTooMany, "users: more than 500"},
		{"typing not a member", `{"op":"typing","id":"x","conv":"g_nope","state":"started"}`, protocol.CodeNotMember, "not a member"},
		{"typing bad state", `{"op":"typing","id":"x","conv":"g_nope","state":"typing"}`, protocol.CodeBadFrame, "state:"},
		{"hidden not a boolean", `{"op":"presence.set","id":"x","hidden":"yes"}`, protocol.CodeBadFrame, "hidden:"},
	}
	for _, tc := range cases {
		alice.write(tc.frame)
		f := alice.reply("x")
		if f.T != protocol.FrameErr || f.Err.Code != tc.code || !strings.Contains(f.Err.Msg, tc.msg) {
			t.Errorf("%s: got %+v %+v, want %s %q", tc.name, f, f.Err, tc.code, tc.msg)
		}
	}
	// bob was named with carol in a refused request: alice watches nobody,
	// so bob connecting pushes nothing to her.
	mustDial(t, m.dev, "bob")
	alice.request("p", `{"op":"ping","id":"p"}`, nil)
	for _, f := range alice.pending {
		if f.T == protocol.FramePresence {
			t.Fatalf("presence push after refused subscribe: %+v", f.Presence)
		}
	}
}

// TestPresenceBoundPerConnection: the bound counts the users a connection
// watches across requests.
func TestPresenceBoundPerConnection(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	users := make([]string, protocol.MaxPresenceUsers)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	for i := 0; i < len(users); i += protocol.MaxUsers / 2 {
		alice.createGroup(fmt.Sprintf("g%d", i), users[i:min(i+protocol.MaxUsers/2, len(users))]...)
	}
	if res := alice.subscribe("a", users...); len(res.Users) != len(users) {
		t.Fatalf("subscribe %d: %d states", len(users), len(res.Users))
	}
	// Again the same users: nothing new, allowed.
	alice.subscribe("b", users[:10]...)
	alice.createGroup("one-more", "extra")
	alice.write(`{"op":"presence.sub","id":"c","users":["extra"]}`)
	if f := alice.reply("c"); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeTooMany {
		t.Fatalf("501st user: %+v %+v", f, f.Err)
	}
	alice.request("d", `{"op":"presence.unsub","id":"d","users":["u0"]}`, nil)
	alice.subscribe("e", "extra")
}

// TestTyping: a typing frame reaches the other members' devices on every
// edge, not the typer's; it is never stored; a flood is rate_limited for
// the flooder only.
func TestTyping(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	alice := mustDial(t, m.edges[0], "alice")
	alice2 := mustDial(t, m.edges[1], "alice")
	bob1 := mustDial(t, m.edges[0], "bob")
	bob2 := mustDial(t, m.edges[1], "bob")
	carol := mustDial(t, m.edges[1], "carol")
	conv := alice.createGroup("pals", "bob", "carol")

	alice.request("t1", fmt.Sprintf(`{"op":"typing","id":"t1","conv":%q,"state":"started"}`, conv.ID), nil)
	for _, c := range []*rawConn{bob1, bob2, carol} {
		f := c.nextOf(protocol.FrameTyping)
		if *f.Typing != (protocol.TypingFrame{Conv: conv.ID, User: "alice", State: protocol.TypingStarted, ExpiresMS: protocol.TypingExpiresMS}) {
			t.Fatalf("typing push %+v", f.Typing)
		}
	}
	// Three in a row pass (burst 3 with the first), the fourth is refused;
	// carol is not affected.
	alice.request("t2", fmt.Sprintf(`{"op":"typing","id":"t2","conv":%q,"state":"started"}`, conv.ID), nil)
	alice.request("t3", fmt.Sprintf(`{"op":"typing","id":"t3","conv":%q,"state":"stopped"}`, conv.ID), nil)
	alice.write(fmt.Sprintf(`{"op":"typing","id":"t4","conv":%q,"state":"started"}`, conv.ID))
	if f := alice.reply("t4"); f.T != protocol.FrameErr || f.Err.Code != protocol.CodeRateLimited {
		t.Fatalf("flood: %+v %+v", f, f.Err)
	}
	carol.request("c1", fmt.Sprintf(`{"op":"typing","id":"c1","conv":%q,"state":"started"}`, conv.ID), nil)
	if f := bob2.nextOf(protocol.FrameTyping); f.Typing.User != "alice" {
		t.Fatalf("bob2: %+v", f.Typing)
	}
	if f := bob2.nextOf(protocol.FrameTyping); f.Typing.User != "alice" || f.Typing.State != protocol.TypingStopped || f.Typing.ExpiresMS != 0 {
		t.Fatalf("bob2: %+v", f.Typing)
	}
	if f := bob2.nextOf(protocol.FrameTyping); f.Typing.User != "carol" {
		t.Fatalf("bob2: %+v", f.Typing)
	}
	// alice's other device got carol's, never her own.
	if f := alice2.nextOf(protocol.FrameTyping); f.Typing.User != "carol" {
		t.Fatalf("alice2 got %+v", f.Typing)
	}
	// Never stored: no history, no head, nothing in sync.
	var page protocol.HistoryResult
	bob1.request("h", fmt.Sprintf(`{"op":"history","id":"h","conv":%q}`, conv.ID), &page)
	if len(page.Msgs) != 0 {
		t.Fatalf("history holds %+v", page.Msgs)
	}
	var sync protocol.SyncResult
	bob1.request("y", fmt.Sprintf(`{"op":"sync","id":"y","cursors":{%q:0}}`, conv.ID), &sync)
	if len(sync.Convs) != 1 || sync.Convs[0].Head != 0 || len(sync.Convs[0].Msgs) != 0 {
		t.Fatalf("sync %+v", sync)
	}
}
