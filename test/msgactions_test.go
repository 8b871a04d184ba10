package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/svcapi"
)

// fail sends a frame whose reply must be err with code; it returns the
// error.
func (c *rawConn) fail(id, frame string, code protocol.Code) *protocol.Error {
	c.t.Helper()
	c.write(frame)
	f := c.reply(id)
	if f.T != protocol.FrameErr || f.Err.Code != code {
		c.t.Fatalf("%s: got %+v (err %+v), want err %s", frame, f, f.Err, code)
	}
	return f.Err
}

func (c *rawConn) history(id, conv, extra string) []natter.Message {
	c.t.Helper()
	var h protocol.HistoryResult
	c.request(id, fmt.Sprintf(`{"op":"history","id":%q,"conv":%q%s}`, id, conv, extra), &h)
	return h.Msgs
}

func (c *rawConn) head(conv string) uint64 {
	c.t.Helper()
	var cv natter.Conversation
	c.request("hd", fmt.Sprintf(`{"op":"conv.get","id":"hd","conv":%q}`, conv), &cv)
	return cv.Head
}

func bySeq(msgs []natter.Message, seq uint64) natter.Message {
	for _, m := range msgs {
		if m.Seq == seq {
			return m
		}
	}
	return natter.Message{}
}

// TestEditAndDeleteFromClients: a sender edits and recalls their own
// messages within the windows (a clock the test moves); history and sync
// return the latest text with edited_at, or a tombstone, from the hot tier
// and from the archive alike; the deleted text is gone from MongoDB (the
// messages collection and the blocks); forged attempts get their codes and
// store nothing; the group's admin deletes any message at any time.
func TestEditAndDeleteFromClients(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // the edge's clock runs this far ahead
	ec := edgeConfig()
	ec.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	m := newMesh(t, meshOpts{streams: streams.Config{HotTier: 100}, edge: &ec})
	alice := mustDial(t, m.dev, "alice") // the group's creator: its admin
	bob := mustDial(t, m.dev, "bob")
	carol := mustDial(t, m.dev, "carol")
	dave := mustDial(t, m.dev, "dave")
	g := alice.createGroup("team", "bob", "carol")
	m1 := bob.send(g.ID, "b1", "helo typo")  // seq 1
	m2 := bob.send(g.ID, "b2", "second")     // seq 2
	a3 := alice.send(g.ID, "a3", "by alice") // seq 3

	// Bob edits m1.
	var edit natter.Ack
	bob.request("e1", fmt.Sprintf(`{"op":"msg.edit","id":"e1","conv":%q,"ref":%q,"cmid":"e1","body":"hello, fixed"}`, g.ID, m1.ID), &edit)
	if edit.Seq != 4 {
		t.Fatalf("edit ack %+v, want seq 4", edit)
	}
	h := carol.history("h1", g.ID, "")
	if got := bySeq(h, 1); got.Body != "hello, fixed" || got.EditedAt != edit.TS || got.Deleted {
		t.Fatalf("edited message in history: %+v", got)
	}
	if got := bySeq(h, 4); got.Type != natter.TypeEdit || got.Ref != m1.ID || got.Body != "hello, fixed" {
		t.Fatalf("edit entry in history: %+v", got)
	}

	// Forged and late attempts: each its code, nothing appended.
	head := carol.head(g.ID)
	carol.fail("f1", fmt.Sprintf(`{"op":"msg.edit","id":"f1","conv":%q,"ref":%q,"cmid":"f1","body":"mine now"}`, g.ID, m1.ID), protocol.CodeForbidden)
	carol.fail("f2", fmt.Sprintf(`{"op":"msg.delete","id":"f2","conv":%q,"ref":%q,"cmid":"f2"}`, g.ID, m1.ID), protocol.CodeForbidden)
	dave.fail("f3", fmt.Sprintf(`{"op":"msg.delete","id":"f3","conv":%q,"ref":%q,"cmid":"f3"}`, g.ID, m1.ID), protocol.CodeNotMember)
	bob.fail("f4", fmt.Sprintf(`{"op":"msg.edit","id":"f4","conv":%q,"ref":"m_nosuchmessage","cmid":"f4","body":"x"}`, g.ID), protocol.CodeNotFound)
	bob.fail("f5", fmt.Sprintf(`{"op":"msg.delete","id":"f5","conv":%q,"ref":%q,"cmid":"f5"}`, g.ID, edit.ID), protocol.CodeBadFrame)
	bob.fail("f6", fmt.Sprintf(`{"op":"msg.edit","id":"f6","conv":%q,"ref":%q,"cmid":"f6"}`, g.ID, m1.ID), protocol.CodeBadFrame)
	skew.Store(int64(49 * time.Hour))
	if e := bob.fail("f7", fmt.Sprintf(`{"op":"msg.edit","id":"f7","conv":%q,"ref":%q,"cmid":"f7","body":"late"}`, g.ID, m1.ID), protocol.CodeForbidden); e.Msg == "" {
		t.Fatal("no message")
	}
	skew.Store(int64(25 * time.Hour))
	bob.fail("f8", fmt.Sprintf(`{"op":"msg.delete","id":"f8","conv":%q,"ref":%q,"cmid":"f8"}`, g.ID, m1.ID), protocol.CodeForbidden)
	if got := carol.head(g.ID); got != head {
		t.Fatalf("refused actions stored something: head %d, was %d", got, head)
	}
	// Within 48h an edit is still allowed, a recall no longer.
	bob.request("e2", fmt.Sprintf(`{"op":"msg.edit","id":"e2","conv":%q,"ref":%q,"cmid":"e2","body":"second, edited"}`, g.ID, m2.ID), nil)
	// The admin deletes bob's message and her own past the window.
	alice.request("d2", fmt.Sprintf(`{"op":"msg.delete","id":"d2","conv":%q,"ref":%q,"cmid":"d2"}`, g.ID, m2.ID), nil)
	alice.request("d3", fmt.Sprintf(`{"op":"msg.delete","id":"d3","conv":%q,"ref":%q,"cmid":"d3"}`, g.ID, a3.ID), nil)
	skew.Store(0)

	// Bob recalls m1; a retry is a duplicate; an edit after it a conflict.
	var del natter.Ack
	bob.request("d1", fmt.Sprintf(`{"op":"msg.delete","id":"d1","conv":%q,"ref":%q,"cmid":"d1"}`, g.ID, m1.ID), &del)
	var again natter.Ack
	bob.request("d1b", fmt.Sprintf(`{"op":"msg.delete","id":"d1b","conv":%q,"ref":%q,"cmid":"d1"}`, g.ID, m1.ID), &again)
	if !again.Dup || again.Seq != del.Seq {
		t.Fatalf("retried delete: %+v, want dup of %+v", again, del)
	}
	bob.fail("f9", fmt.Sprintf(`{"op":"msg.edit","id":"f9","conv":%q,"ref":%q,"cmid":"f9","body":"back"}`, g.ID, m1.ID), protocol.CodeConflict)

	// An admin the owner appointed deletes another member's message.
	b9 := bob.send(g.ID, "b9", "off topic")
	carol.fail("f10", fmt.Sprintf(`{"op":"msg.delete","id":"f10","conv":%q,"ref":%q,"cmid":"f10"}`, g.ID, b9.ID), protocol.CodeForbidden)
	alice.request("ad", fmt.Sprintf(`{"op":"admins.add","id":"ad","conv":%q,"users":["carol"]}`, g.ID), nil)
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		carol.write(fmt.Sprintf(`{"op":"msg.delete","id":"d9","conv":%q,"ref":%q,"cmid":"d9"}`, g.ID, b9.ID))
		if f := carol.reply("d9"); f.T != protocol.FrameRes {
			return fmt.Errorf("admin's delete: %+v", f.Err)
		}
		return nil
	})

	checkPage := func(where string, msgs []natter.Message) {
		t.Helper()
		for _, msg := range msgs {
			switch {
			case msg.Seq == 1 || msg.Seq == 2 || msg.Seq == 3:
				if !msg.Deleted || msg.Body != "" || msg.EditedAt != 0 {
					t.Fatalf("%s: deleted seq %d: %+v", where, msg.Seq, msg)
				}
			case msg.Type == natter.TypeEdit:
				if !msg.Deleted || msg.Body != "" {
					t.Fatalf("%s: edit entry of a deleted message keeps its text: %+v", where, msg)
				}
			}
		}
	}
	checkPage("history (hot tier)", carol.history("h2", g.ID, ""))
	var s protocol.SyncResult
	carol.request("y1", fmt.Sprintf(`{"op":"sync","id":"y1","cursors":{%q:0}}`, g.ID), &s)
	checkPage("sync (hot tier)", s.Convs[0].Msgs)

	// The archive: the persist role scrubs the stored documents.
	st := m.dev.Store()
	ctx := context.Background()
	for _, id := range []string{m1.ID, m2.ID, a3.ID, edit.ID} {
		testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			got, err := st.GetMessage(ctx, id)
			if err != nil || got.Body != "" {
				return fmt.Errorf("stored %s: %+v %v", id, got, err)
			}
			return nil
		})
	}

	// Push the first messages out of the hot tier (100 per conversation)
	// and let the first block be archived: its deleted messages without text.
	for i := 0; i < 130; i++ {
		alice.write(fmt.Sprintf(`{"op":"send","id":"p%d","conv":%q,"cmid":"p%d","body":"fill %d"}`, i, g.ID, i, i))
	}
	for i := 0; i < 130; i++ {
		if f := alice.reply(fmt.Sprint("p", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}
	// Blocks are derived data (workers/persist, "The archive's blocks"):
	// persist writes the block when its batches complete it, else an
	// archive read that finds it complete in the messages collection
	// writes it (convsvc). Read the archive until the block is there.
	var block []natter.Message
	reads, lastRead := 0, time.Time{}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		var ok bool
		var err error
		block, ok, err = st.ArchiveRange(ctx, g.ID, 1, store.BlockSize)
		if err != nil || !ok {
			if time.Since(lastRead) > 500*time.Millisecond {
				reads++
				lastRead = time.Now()
				carol.history(fmt.Sprint("hb", reads), g.ID, `,"before":20`)
			}
			return fmt.Errorf("block 0: ok %v err %v (%d archive reads)", ok, err, reads)
		}
		return nil
	})
	for _, msg := range block[:3] {
		if msg.Body != "" {
			t.Fatalf("archived block keeps deleted text: %+v", msg)
		}
	}
	// Deleting a message of the archived block rewrites the block.
	p0 := block[10]
	alice.request("d4", fmt.Sprintf(`{"op":"msg.delete","id":"d4","conv":%q,"ref":%q,"cmid":"d4"}`, g.ID, p0.ID), nil)
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		b, ok, err := st.ArchiveRange(ctx, g.ID, p0.Seq, p0.Seq)
		if err != nil || !ok || b[0].Body != "" {
			return errors.New("block not scrubbed")
		}
		if got, err := st.GetMessage(ctx, p0.ID); err != nil || got.Body != "" {
			return fmt.Errorf("message not scrubbed: %+v %v", got, err)
		}
		return nil
	})

	// Read from the archive: the same tombstones.
	old := carol.history("h3", g.ID, `,"before":20`)
	if len(old) != 19 {
		t.Fatalf("archive page: %d messages", len(old))
	}
	checkPage("history (archive)", old)
	if got := bySeq(old, p0.Seq); !got.Deleted || got.Body != "" {
		t.Fatalf("archive page: %+v", got)
	}
	var s2 protocol.SyncResult
	carol.request("y2", fmt.Sprintf(`{"op":"sync","id":"y2","cursors":{%q:0},"limit":20}`, g.ID), &s2)
	checkPage("sync (archive)", s2.Convs[0].Msgs)
}

// TestEditAndDeleteREST: PATCH and DELETE on a message are msg.edit and
// msg.delete, with the same checks and codes.
func TestEditAndDeleteREST(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	g := alice.createGroup("rest", "bob")
	bob := mustDial(t, m.dev, "bob")
	m1 := alice.send(g.ID, "a1", "hello")
	url := "http://" + m.dev.Addr() + "/v1/conversations/" + g.ID + "/messages/" + m1.ID
	do := func(method, url, user, body string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token(t, user))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("PATCH", url, "bob", `{"cmid":"x1","body":"hijack"}`); code != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Fatalf("bob's edit of alice's message: %d %s", code, body)
	}
	if code, body := do("DELETE", url, "bob", ``, "Idempotency-Key", "x2"); code != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Fatalf("bob's delete of alice's message: %d %s", code, body)
	}
	if code, body := do("DELETE", url, "alice", ``); code != 400 || !strings.Contains(body, `cmid: required`) {
		t.Fatalf("delete without cmid: %d %s", code, body)
	}
	if code, body := do("PATCH", url, "alice", `{"cmid":"e1","body":"hello!"}`); code != 201 {
		t.Fatalf("edit: %d %s", code, body)
	}
	if got := bySeq(bob.history("h1", g.ID, ""), 1); got.Body != "hello!" || got.EditedAt == 0 {
		t.Fatalf("after the REST edit: %+v", got)
	}
	if code, body := do("DELETE", url+"?cmid=d1", "alice", ``); code != 201 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, body := do("DELETE", url, "alice", ``, "Idempotency-Key", "d1"); code != 200 || !strings.Contains(body, `"dup":true`) {
		t.Fatalf("retried delete: %d %s", code, body)
	}
	if got := bySeq(bob.history("h2", g.ID, ""), 1); !got.Deleted || got.Body != "" {
		t.Fatalf("after the REST delete: %+v", got)
	}
}

// TestServiceDeleteAppliedByPersist: an edit and a delete through the
// service API (which the edge never sees) reach the pages and the archive
// through the persist role.
func TestServiceDeleteAppliedByPersist(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	svc := newSvcEnv(t, m.dev)
	alice := mustDial(t, m.dev, "alice")
	ctx := ctx10(t)
	conv := svc.group(t, "svc_bot", "Bot", "alice")
	sent, err := svc.api.Send(ctx, svcapi.SendRequest{Service: "svc_bot", Conv: conv.ID, Cmid: "s1", Body: "invoice 1 due"})
	if err != nil {
		t.Fatal(err)
	}
	edit, err := svc.api.Edit(ctx, svcapi.EditRequest{Service: "svc_bot", Conv: conv.ID, Ref: sent.ID, Cmid: "s1-edit", Body: "invoice 1 paid"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if got := bySeq(alice.history("h1", conv.ID, ""), sent.Seq); got.Body != "invoice 1 paid" || got.EditedAt != edit.TS {
			return fmt.Errorf("edit not applied: %+v", got)
		}
		return nil
	})
	if _, err := svc.api.Delete(ctx, svcapi.DeleteRequest{Service: "svc_bot", Conv: conv.ID, Ref: sent.ID, Cmid: "s1-del"}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		h := alice.history("h2", conv.ID, "")
		if got := bySeq(h, sent.Seq); !got.Deleted || got.Body != "" {
			return fmt.Errorf("delete not applied: %+v", got)
		}
		if got := bySeq(h, edit.Seq); !got.Deleted || got.Body != "" {
			return fmt.Errorf("edit entry keeps the text: %+v", got)
		}
		for _, id := range []string{sent.ID, edit.ID} {
			if got, err := m.dev.Store().GetMessage(context.Background(), id); err != nil || got.Body != "" {
				return fmt.Errorf("archived %s: %+v %v", id, got, err)
			}
		}
		return nil
	})
}
