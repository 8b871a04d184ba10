package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

func (c *rawConn) react(id, conv, ref, emoji string, remove bool) protocol.ReactResult {
	c.t.Helper()
	var res protocol.ReactResult
	c.request(id, fmt.Sprintf(`{"op":"react","id":%q,"conv":%q,"ref":%q,"emoji":%q,"remove":%v}`, id, conv, ref, emoji, remove), &res)
	return res
}

// nextReaction reads frames until a reaction push.
func (c *rawConn) nextReaction() protocol.ReactionFrame {
	c.t.Helper()
	return *c.nextOf(protocol.FrameReaction).Reaction
}

func reactionsOf(m natter.Message) string {
	if m.Reactions == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range *m.Reactions {
		fmt.Fprintf(&b, "%s%d", r.Emoji, r.Count)
		if r.Mine {
			b.WriteString("*")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

// TestReactions: members add and remove reactions, idempotent per user,
// message and emoji; every member's connections get a reaction push;
// history and sync pages carry the counts with the asker's own marked;
// forged and bad requests get their codes and change nothing; events go to
// the event stream.
func TestReactions(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	bob := mustDial(t, m.dev, "bob")
	carol := mustDial(t, m.dev, "carol")
	dave := mustDial(t, m.dev, "dave")
	g := alice.createGroup("team", "bob", "carol")
	m1 := alice.send(g.ID, "a1", "lunch?")
	m2 := alice.send(g.ID, "a2", "later")

	if r := bob.react("r1", g.ID, m1.ID, "👍", false); r.Count != 1 || !r.Mine {
		t.Fatalf("first reaction: %+v", r)
	}
	for _, c := range []*rawConn{alice, carol} {
		if f := c.nextReaction(); f.Conv != g.ID || f.Ref != m1.ID || f.Seq != m1.Seq || f.User != "bob" || f.Emoji != "👍" || f.Count != 1 || f.Removed {
			t.Fatalf("reaction push: %+v", f)
		}
	}
	if r := bob.react("r2", g.ID, m1.ID, "👍", false); r.Count != 1 {
		t.Fatalf("the same reaction again: %+v, want count 1", r)
	}
	carol.react("r3", g.ID, m1.ID, "👍", false)
	if r := carol.react("r4", g.ID, m1.ID, "🎉", false); r.Count != 1 {
		t.Fatalf("carol's second emoji: %+v", r)
	}
	// The next push alice gets is carol's, not a second one of bob's.
	if f := alice.nextReaction(); f.User != "carol" || f.Count != 2 {
		t.Fatalf("after an idempotent repeat, the next push: %+v", f)
	}

	// Refused, nothing changed.
	dave.fail("f1", fmt.Sprintf(`{"op":"react","id":"f1","conv":%q,"ref":%q,"emoji":"👍"}`, g.ID, m1.ID), protocol.CodeNotMember)
	bob.fail("f2", fmt.Sprintf(`{"op":"react","id":"f2","conv":%q,"ref":%q}`, g.ID, m1.ID), protocol.CodeBadFrame)
	bob.fail("f3", fmt.Sprintf(`{"op":"react","id":"f3","conv":%q,"ref":%q,"emoji":%q}`, g.ID, m1.ID, strings.Repeat("x", 33)), protocol.CodeBadFrame)
	bob.fail("f4", fmt.Sprintf(`{"op":"react","id":"f4","conv":%q,"ref":%q,"emoji":"a b"}`, g.ID, m1.ID), protocol.CodeBadFrame)
	bob.fail("f5", fmt.Sprintf(`{"op":"react","id":"f5","conv":%q,"ref":"m_nosuchmessage","emoji":"👍"}`, g.ID), protocol.CodeNotFound)

	check := func(c *rawConn, want string) {
		t.Helper()
		h := c.history("h", g.ID, "")
		if got := reactionsOf(bySeq(h, m1.Seq)); got != want {
			t.Fatalf("history of %s: reactions %q, want %q", c.conn.LocalAddr(), got, want)
		}
		var s protocol.SyncResult
		c.request("y", fmt.Sprintf(`{"op":"sync","id":"y","cursors":{%q:0}}`, g.ID), &s)
		if got := reactionsOf(bySeq(s.Convs[0].Msgs, m1.Seq)); got != want {
			t.Fatalf("sync: reactions %q, want %q", got, want)
		}
	}
	if got := reactionsOf(bySeq(bob.history("h0", g.ID, ""), m2.Seq)); got != "" {
		t.Fatalf("a message without reactions has %q", got)
	}
	check(bob, "👍2* 🎉1")
	check(carol, "👍2* 🎉1*")
	check(alice, "👍2 🎉1")

	// At most 20 distinct emoji per message.
	for i := 0; i < 18; i++ {
		bob.react(fmt.Sprint("b", i), g.ID, m2.ID, fmt.Sprintf(":e%d:", i), false)
	}
	bob.react("b18", g.ID, m2.ID, "👍", false)
	bob.react("b19", g.ID, m2.ID, "🎉", false)
	if e := carol.fail("f6", fmt.Sprintf(`{"op":"react","id":"f6","conv":%q,"ref":%q,"emoji":"🚀"}`, g.ID, m2.ID), protocol.CodeTooMany); !strings.Contains(e.Msg, "20") {
		t.Fatalf("too_many message: %q", e.Msg)
	}
	if r := carol.react("c1", g.ID, m2.ID, "👍", false); r.Count != 2 {
		t.Fatalf("an existing emoji past the bound: %+v", r)
	}

	// Removing: once changes the count, twice nothing.
	if r := bob.react("x1", g.ID, m1.ID, "👍", true); r.Count != 1 || r.Mine {
		t.Fatalf("remove: %+v", r)
	}
	if r := bob.react("x2", g.ID, m1.ID, "👍", true); r.Count != 1 {
		t.Fatalf("remove again: %+v", r)
	}
	check(bob, "👍1 🎉1")

	// A deleted message takes no reactions and shows none.
	alice.request("d1", fmt.Sprintf(`{"op":"msg.delete","id":"d1","conv":%q,"ref":%q,"cmid":"d1"}`, g.ID, m1.ID), nil)
	bob.fail("f7", fmt.Sprintf(`{"op":"react","id":"f7","conv":%q,"ref":%q,"emoji":"👍"}`, g.ID, m1.ID), protocol.CodeConflict)
	check(bob, "")

	// The event stream has every change once.
	added, removed := 0, 0
	for _, ev := range newSvcEnv(t, m.dev).events(t, g.ID) {
		switch ev.Kind {
		case natter.EventReactionAdded, natter.EventReactionRemoved:
			var d natter.EventReaction
			if err := json.Unmarshal(ev.Data, &d); err != nil || d.User != ev.Actor || d.Seq == 0 || d.Emoji == "" {
				t.Fatalf("reaction event %+v: %+v %v", ev, d, err)
			}
			if ev.Kind == natter.EventReactionAdded {
				added++
			} else {
				removed++
			}
		}
	}
	if added != 24 || removed != 1 {
		t.Fatalf("reaction events: %d added, %d removed; want 24 and 1", added, removed)
	}
}

// TestReactionsREST: PUT and DELETE of a message's reaction are react.
func TestReactionsREST(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	g := alice.createGroup("rest", "bob")
	m1 := alice.send(g.ID, "a1", "hello")
	base := "http://" + m.dev.Addr() + "/v1/conversations/" + g.ID + "/messages/" + m1.ID + "/reactions/"
	do := func(method, emoji, user string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+url.PathEscape(emoji), nil)
		req.Header.Set("Authorization", "Bearer "+token(t, user))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 2 {
		if code, body := do("PUT", "👍", "bob"); code != 200 || body != `{"count":1,"mine":true}` {
			t.Fatalf("put: %d %s", code, body)
		}
	}
	if code, body := do("PUT", "👍", "dave"); code != 403 || !strings.Contains(body, "not_member") {
		t.Fatalf("a non-member's put: %d %s", code, body)
	}
	if code, body := do("PUT", "a b", "bob"); code != 400 || !strings.Contains(body, "emoji:") {
		t.Fatalf("bad emoji: %d %s", code, body)
	}
	if got := reactionsOf(bySeq(alice.history("h", g.ID, ""), m1.Seq)); got != "👍1" {
		t.Fatalf("history: %q", got)
	}
	if code, body := do("DELETE", "👍", "bob"); code != 200 || body != `{"count":0,"mine":false}` {
		t.Fatalf("delete: %d %s", code, body)
	}
}
