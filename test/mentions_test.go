package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
)

// TestMentions: mentions of members reach the other devices (on another
// edge) and come back in history; a mention of a non-member, a malformed,
// duplicate or 51st mention, and @all by a plain member are refused with
// nothing stored; @all by the owner and by an admin is accepted.
func TestMentions(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	e1, e2 := m.edges[0], m.edges[1]
	alice := mustDial(t, e1, "alice")
	g := alice.createGroup("mentions", "bob", "carol")
	bob := mustDial(t, e2, "bob")
	carol := mustDial(t, e1, "carol")

	// Delivered with the mentions, and stored with them.
	a := alice.sendWith(g.ID, "m1", "hi @bob @carol", `,"mentions":["bob","carol"]`)
	if got := bob.pushOf(g.ID, a.Seq); fmt.Sprint(got.Mentions) != "[bob carol]" {
		t.Fatalf("pushed mentions: %+v", got)
	}
	if got := bySeq(bob.history("h", g.ID, ""), a.Seq); fmt.Sprint(got.Mentions) != "[bob carol]" {
		t.Fatalf("history mentions: %+v", got)
	}

	// Refusals: nothing stored.
	head := alice.head(g.ID)
	many := `"u0"`
	for i := 1; i <= 50; i++ {
		many += fmt.Sprintf(`,"u%d"`, i)
	}
	for i, c := range []struct {
		who   *rawConn
		extra string
		code  protocol.Code
		msg   string
	}{
		{alice, `,"mentions":["dave"]`, protocol.CodeBadFrame, "mentions[0]: dave is not a member"},
		{alice, `,"mentions":["bob","bob"]`, protocol.CodeBadFrame, `mentions[1]: "bob" mentioned twice`},
		{alice, `,"mentions":["no spaces"]`, protocol.CodeBadFrame, "mentions[0]: must be"},
		{alice, `,"mentions":"bob"`, protocol.CodeBadFrame, "mentions"},
		{alice, `,"mentions":[` + many + `]`, protocol.CodeBadFrame, "mentions: more than 50"},
		{bob, `,"mentions":["@all"]`, protocol.CodeForbidden, "only the group's owner and admins mention @all"},
		{carol, `,"mentions":["alice","@all"]`, protocol.CodeForbidden, "@all"},
	} {
		id := fmt.Sprint("bad", i)
		e := c.who.fail(id, fmt.Sprintf(`{"op":"send","id":%q,"conv":%q,"cmid":%q,"body":"x"%s}`, id, g.ID, id, c.extra), c.code)
		if !strings.Contains(e.Msg, c.msg) {
			t.Fatalf("case %d: %q, want it to name %q", i, e.Msg, c.msg)
		}
	}
	if got := alice.head(g.ID); got != head {
		t.Fatalf("refused sends stored something: head %d, want %d", got, head)
	}

	// @all by the owner, then by carol once an admin.
	all := alice.sendWith(g.ID, "all1", "@all hello", `,"mentions":["@all"]`)
	if got := bob.pushOf(g.ID, all.Seq); fmt.Sprint(got.Mentions) != "[@all]" {
		t.Fatalf("pushed @all: %+v", got)
	}
	alice.request("ad", fmt.Sprintf(`{"op":"admins.add","id":"ad","conv":%q,"users":["carol"]}`, g.ID), nil)
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		carol.write(fmt.Sprintf(`{"op":"send","id":"all2","conv":%q,"cmid":"all2","body":"@all","mentions":["@all"]}`, g.ID))
		if f := carol.reply("all2"); f.T != protocol.FrameRes {
			return fmt.Errorf("admin's @all: %+v", f.Err)
		}
		return nil
	})

	// The mention counts, in sync and conv.list: bob has a, all1 and all2;
	// the refused sends count nothing. A user's own send marks the
	// conversation read up to it (the persist role raises the cursor, a
	// moment later): alice ends with all2, carol (who sent all2) with none.
	mentionsOf := func(c *rawConn, id string) (sync, list uint64) {
		t.Helper()
		var s protocol.SyncResult
		c.request(id+"s", `{"op":"sync","id":"`+id+`s","cursors":{}}`, &s)
		for _, sc := range s.Convs {
			if sc.Conv == g.ID {
				sync = sc.Mentions
			}
		}
		var l protocol.ConvList
		c.request(id+"l", `{"op":"conv.list","id":"`+id+`l"}`, &l)
		for _, cv := range l.Convs {
			if cv.ID == g.ID {
				list = cv.Mentions
			}
		}
		return sync, list
	}
	for i, c := range []struct {
		who  *rawConn
		want uint64
	}{{bob, 3}, {alice, 1}, {carol, 0}} {
		testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if s, l := mentionsOf(c.who, fmt.Sprint("n", i)); s != c.want || l != c.want {
				return fmt.Errorf("mention counts of %d: sync %d, conv.list %d, want %d", i, s, l, c.want)
			}
			return nil
		})
	}
	// bob reads past a: 2 left; reads everything: 0.
	bob.request("r1", fmt.Sprintf(`{"op":"read","id":"r1","conv":%q,"seq":%d}`, g.ID, a.Seq), nil)
	if s, l := mentionsOf(bob, "n2"); s != 2 || l != 2 {
		t.Fatalf("after reading %d: sync %d, conv.list %d, want 2", a.Seq, s, l)
	}
	bob.request("r2", fmt.Sprintf(`{"op":"read","id":"r2","conv":%q,"seq":%d}`, g.ID, alice.head(g.ID)), nil)
	if s, l := mentionsOf(bob, "n3"); s != 0 || l != 0 {
		t.Fatalf("after reading all: sync %d, conv.list %d, want 0", s, l)
	}
}
