package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// readOf reads frames until a read push of conv.
func (c *rawConn) readOf(conv string) protocol.ReadFrame {
	c.t.Helper()
	for {
		f := c.nextOf(protocol.FrameRead)
		if f.Read.Conv == conv {
			return *f.Read
		}
	}
}

func (c *rawConn) markRead(id, conv string, seq uint64) {
	c.t.Helper()
	c.request(id, fmt.Sprintf(`{"op":"read","id":%q,"conv":%q,"seq":%d}`, id, conv, seq), nil)
}

func (c *rawConn) receipts(id, frame string) (protocol.ReceiptsResult, *protocol.Error) {
	c.t.Helper()
	c.write(frame)
	f := c.reply(id)
	if f.T == protocol.FrameErr {
		return protocol.ReceiptsResult{}, f.Err
	}
	var res protocol.ReceiptsResult
	if err := json.Unmarshal(f.Data, &res); err != nil {
		c.t.Fatal(err)
	}
	return res, nil
}

// TestReadPushAcrossEdgesAndDevices: alice and bob each have two devices,
// one on each of two edges. A read by alice that moves her cursor reaches
// all four sockets (her own reading socket too, as documented); reads that
// do not move it (the same seq again, a lower one) push nothing: the next
// read push each socket gets is that of the next forward read. Coalescing
// is off, so that a push of a read that did not move the cursor would not
// be hidden in an interval (TestReadPushCoalesced has the default).
func TestReadPushAcrossEdgesAndDevices(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, readPush: -1})
	e1, e2 := m.edges[0], m.edges[1]
	a1, a2 := mustDial(t, e1, "alice"), mustDial(t, e2, "alice")
	b1, b2 := mustDial(t, e2, "bob"), mustDial(t, e1, "bob")
	var d natter.Conversation
	a1.request("d", `{"op":"conv.create","id":"d","kind":"direct","with":"bob"}`, &d)
	for i := range 3 {
		b1.send(d.ID, fmt.Sprintf("m%d", i), "hi")
	}

	a1.markRead("r1", d.ID, 2)
	for name, c := range map[string]*rawConn{"alice on edge 1": a1, "alice on edge 2": a2, "bob on edge 2": b1, "bob on edge 1": b2} {
		if r := c.readOf(d.ID); r.User != "alice" || r.Seq != 2 {
			t.Fatalf("%s: first read push %+v, want alice at 2", name, r)
		}
	}
	a2.markRead("r2", d.ID, 2) // the same seq: no move
	a1.markRead("r3", d.ID, 1) // back: no move
	a2.markRead("r4", d.ID, 3)
	for name, c := range map[string]*rawConn{"alice on edge 1": a1, "alice on edge 2": a2, "bob on edge 2": b1, "bob on edge 1": b2} {
		if r := c.readOf(d.ID); r.User != "alice" || r.Seq != 3 {
			t.Fatalf("%s: read push after reads that did not move the cursor: %+v, want alice at 3", name, r)
		}
	}
	// bob's read reaches alice's devices as a receipt.
	b2.markRead("r5", d.ID, 3)
	for name, c := range map[string]*rawConn{"alice on edge 1": a1, "alice on edge 2": a2} {
		if r := c.readOf(d.ID); r.User != "bob" || r.Seq != 3 {
			t.Fatalf("%s: bob's receipt %+v", name, r)
		}
	}
}

// TestReceiptsGroupThreshold: in a small group the other members get a
// read's receipt; in a group of MaxReceiptMembers+1 they get none (only the
// reader's own devices get the read push).
func TestReceiptsGroupThreshold(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	e1, e2 := m.edges[0], m.edges[1]
	a1, a2 := mustDial(t, e1, "alice"), mustDial(t, e2, "alice")
	b1, b2 := mustDial(t, e2, "bob"), mustDial(t, e1, "bob")
	carol := mustDial(t, e2, "carol")

	// A group of exactly the threshold gets receipts.
	at := []string{"bob", "carol"}
	for i := len(at) + 1; i < protocol.MaxReceiptMembers; i++ {
		at = append(at, fmt.Sprintf("u%03d", i))
	}
	small := a1.createGroup("small", at...)
	if small.MemberCount != protocol.MaxReceiptMembers {
		t.Fatalf("small group has %d members", small.MemberCount)
	}
	big := a1.createGroup("big", append(slices.Clone(at), "one-more")...)
	if big.MemberCount != protocol.MaxReceiptMembers+1 {
		t.Fatalf("big group has %d members", big.MemberCount)
	}

	a1.markRead("r1", small.ID, 5)
	for name, c := range map[string]*rawConn{"alice 2": a2, "bob 1": b1, "bob 2": b2, "carol": carol} {
		if r := c.readOf(small.ID); r.User != "alice" || r.Seq != 5 {
			t.Fatalf("%s: receipt in the group at the threshold: %+v", name, r)
		}
	}

	// Above the threshold: alice's other device gets it, bob and carol
	// nothing. The read in the small group after it is published after
	// it by the same service, so it is the next read push they get.
	a1.markRead("r2", big.ID, 7)
	if r := a2.readOf(big.ID); r.User != "alice" || r.Seq != 7 {
		t.Fatalf("alice's other device, group above the threshold: %+v", r)
	}
	a1.markRead("r3", small.ID, 6)
	for name, c := range map[string]*rawConn{"bob 1": b1, "bob 2": b2, "carol": carol} {
		f := c.nextOf(protocol.FrameRead)
		if r := f.Read; r.Conv != small.ID || r.Seq != 6 {
			t.Fatalf("%s: got %+v, want no receipt of the group above the threshold (%s) before alice's read of %s at 6", name, r, big.ID, small.ID)
		}
	}
}

// TestReadPushCoalesced: 20 quick reads by one user push fewer than 20
// times, and the last push carries the highest seq.
func TestReadPushCoalesced(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	a1, a2 := mustDial(t, m.edges[0], "alice"), mustDial(t, m.edges[1], "alice")
	bob := mustDial(t, m.edges[1], "bob")
	var d natter.Conversation
	a1.request("d", `{"op":"conv.create","id":"d","kind":"direct","with":"bob"}`, &d)
	const n = 20
	for i := 1; i <= n; i++ {
		a1.write(fmt.Sprintf(`{"op":"read","id":"r%d","conv":%q,"seq":%d}`, i, d.ID, i))
	}
	for i := 1; i <= n; i++ {
		if f := a1.reply(fmt.Sprintf("r%d", i)); f.T != protocol.FrameRes {
			t.Fatalf("read %d: %+v", i, f.Err)
		}
	}
	for name, c := range map[string]*rawConn{"alice 2": a2, "bob": bob} {
		pushes := 0
		for {
			r := c.readOf(d.ID)
			pushes++
			if r.Seq == n {
				break
			}
		}
		if pushes >= n {
			t.Errorf("%s: %d read pushes for %d quick reads: not coalesced", name, pushes, n)
		}
	}
}

// TestReceiptsRequest pages the read cursors of a group larger than a
// page, and refuses non-members, bad limits and bad cursors with their
// documented codes, on the WebSocket and REST.
func TestReceiptsRequest(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	bob := mustDial(t, m.dev, "bob")
	carol := mustDial(t, m.dev, "carol")
	const size = 250
	var others []string
	for i := len(others); len(others) < size-2; i++ {
		others = append(others, fmt.Sprintf("u%03d", i))
	}
	g := alice.createGroup("big", append([]string{"bob"}, others...)...)
	if g.MemberCount != size {
		t.Fatalf("group has %d members", g.MemberCount)
	}
	alice.markRead("r1", g.ID, 5)
	bob.markRead("r2", g.ID, 3)

	var all []protocol.Receipt
	after, pages := "", 0
	for {
		frame := fmt.Sprintf(`{"op":"receipts","id":"p%d","conv":%q,"limit":100}`, pages, g.ID)
		if after != "" {
			frame = fmt.Sprintf(`{"op":"receipts","id":"p%d","conv":%q,"limit":100,"after_user":%q}`, pages, g.ID, after)
		}
		res, e := bob.receipts(fmt.Sprintf("p%d", pages), frame)
		if e != nil {
			t.Fatalf("page %d: %+v", pages, e)
		}
		pages++
		if len(res.Reads) > 100 || (res.Next != "" && len(res.Reads) != 100) {
			t.Fatalf("page %d: %d reads, next %q", pages, len(res.Reads), res.Next)
		}
		all = append(all, res.Reads...)
		if res.Next == "" {
			break
		}
		after = res.Next
	}
	if pages != 3 || len(all) != size {
		t.Fatalf("%d pages, %d reads; want 3 pages of %d members", pages, len(all), size)
	}
	if !slices.IsSortedFunc(all, func(a, b protocol.Receipt) int { return strings.Compare(a.User, b.User) }) {
		t.Fatal("reads are not sorted by user")
	}
	for _, r := range all {
		want := map[string]uint64{"alice": 5, "bob": 3}[r.User]
		if r.Seq != want {
			t.Fatalf("%s: seq %d, want %d", r.User, r.Seq, want)
		}
	}
	// The default page is 100.
	if res, _ := alice.receipts("def", fmt.Sprintf(`{"op":"receipts","id":"def","conv":%q}`, g.ID)); len(res.Reads) != protocol.DefaultReceiptsLimit || res.Next == "" {
		t.Fatalf("default page: %d reads, next %q", len(res.Reads), res.Next)
	}

	for _, tc := range []struct {
		name, frame string
		code        protocol.Code
		msg         string
	}{
		{"non-member", `{"op":"receipts","id":"x","conv":"` + g.ID + `"}`, protocol.CodeNotMember, ""},
		{"unknown conversation", `{"op":"receipts","id":"x","conv":"g_nope"}`, protocol.CodeNotMember, ""},
		{"limit too big", `{"op":"receipts","id":"x","conv":"` + g.ID + `","limit":201}`, protocol.CodeBadFrame, "limit: must be 1..200 (0 or absent: default)"},
		{"negative limit", `{"op":"receipts","id":"x","conv":"` + g.ID + `","limit":-1}`, protocol.CodeBadFrame, "limit: must be 1..200"},
		{"bad cursor", `{"op":"receipts","id":"x","conv":"` + g.ID + `","after_user":"no such id!"}`, protocol.CodeBadFrame, "after_user: must be 1..64 characters"},
		{"cursor not a string", `{"op":"receipts","id":"x","conv":"` + g.ID + `","after_user":7}`, protocol.CodeBadFrame, "after_user"},
		{"no conv", `{"op":"receipts","id":"x"}`, protocol.CodeBadFrame, "conv: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := carol.receipts("x", tc.frame)
			if e == nil || e.Code != tc.code || !strings.HasPrefix(e.Msg, tc.msg) {
				t.Fatalf("%s: got %+v, want %s %q", tc.frame, e, tc.code, tc.msg)
			}
		})
	}

	// REST: the same page and the same refusals.
	base := "http://" + m.dev.Addr() + "/v1/conversations/" + g.ID + "/receipts"
	status, _, body := restCall(t, http.MethodGet, base+"?limit=2", token(t, "alice"), "")
	var res protocol.ReceiptsResult
	if err := json.Unmarshal(body, &res); status != http.StatusOK || err != nil || len(res.Reads) != 2 || res.Next != res.Reads[1].User {
		t.Fatalf("REST page: %d %s", status, body)
	}
	cursor := res.Next
	status, _, body = restCall(t, http.MethodGet, base+"?after_user="+cursor+"&limit=1", token(t, "alice"), "")
	if err := json.Unmarshal(body, &res); status != http.StatusOK || err != nil || len(res.Reads) != 1 || res.Reads[0].User <= cursor {
		t.Fatalf("REST next page: %d %s", status, body)
	}
	if status, code, _ := restCall(t, http.MethodGet, base, token(t, "carol"), ""); status != http.StatusForbidden || code != string(protocol.CodeNotMember) {
		t.Fatalf("REST non-member: %d %s", status, code)
	}
	if status, code, _ := restCall(t, http.MethodGet, base+"?limit=500", token(t, "alice"), ""); status != http.StatusBadRequest || code != string(protocol.CodeBadFrame) {
		t.Fatalf("REST bad limit: %d %s", status, code)
	}
}
