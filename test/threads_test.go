package test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
)

// sendFrame sends a send frame with extra fields and returns its ack.
func (c *rawConn) sendWith(conv, cmid, body, extra string) natter.Ack {
	c.t.Helper()
	var ack natter.Ack
	c.request("s-"+cmid, fmt.Sprintf(`{"op":"send","id":"s-%s","conv":%q,"cmid":%q,"body":%q%s}`, cmid, conv, cmid, body, extra), &ack)
	return ack
}

// pushOf reads pushes until the message with seq of conv arrives.
func (c *rawConn) pushOf(conv string, seq uint64) natter.Message {
	c.t.Helper()
	for {
		f := c.next()
		if f.T == protocol.FrameMsg && f.Message.Conv == conv && f.Message.Seq == seq {
			return *f.Message
		}
	}
}

func seqsOf(msgs []natter.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// TestRepliesAndThreads: replies and thread replies from one device reach
// the user's other device on another edge with reply_to and thread; bad
// refs are refused with nothing stored; the root carries its reply count
// and last reply time in history and sync; the thread op and its REST
// route page the replies in seq order.
func TestRepliesAndThreads(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1})
	e1, e2 := m.edges[0], m.edges[1]
	alice := mustDial(t, e1, "alice")
	g := alice.createGroup("threads", "bob")
	other := alice.createGroup("elsewhere", "bob")
	bobPhone := mustDial(t, e1, "bob")
	bobLaptop := mustDial(t, e2, "bob")

	root := alice.send(g.ID, "r", "the root")      // seq 1
	elsewhere := alice.send(other.ID, "o", "else") // other conversation
	bobLaptop.pushOf(g.ID, root.Seq)

	// A reply from bob's phone reaches his laptop with reply_to.
	re := bobPhone.sendWith(g.ID, "re", "a reply", fmt.Sprintf(`,"reply_to":%q`, root.ID)) // seq 2
	if got := bobLaptop.pushOf(g.ID, re.Seq); got.ReplyTo != root.ID || got.Thread != "" {
		t.Fatalf("reply pushed to the other device: %+v", got)
	}
	// Three thread replies, a plain message between them.
	t1 := bobPhone.sendWith(g.ID, "t1", "in thread 1", fmt.Sprintf(`,"thread":%q`, root.ID))                      // seq 3
	plain := alice.send(g.ID, "p", "not in the thread")                                                           // seq 4
	t2 := bobPhone.sendWith(g.ID, "t2", "in thread 2", fmt.Sprintf(`,"thread":%q,"reply_to":%q`, root.ID, t1.ID)) // seq 5
	t3 := alice.sendWith(g.ID, "t3", "in thread 3", fmt.Sprintf(`,"thread":%q`, root.ID))                         // seq 6
	if got := bobLaptop.pushOf(g.ID, t2.Seq); got.Thread != root.ID || got.ReplyTo != t1.ID {
		t.Fatalf("thread reply pushed to the other device: %+v", got)
	}
	// A retried thread reply is a duplicate and not counted twice.
	if again := bobPhone.sendWith(g.ID, "t1", "in thread 1", fmt.Sprintf(`,"thread":%q`, root.ID)); !again.Dup {
		t.Fatalf("retry: %+v", again)
	}

	// Bad refs: refused, nothing stored.
	head := alice.head(g.ID)
	edit := natter.Ack{}
	alice.request("e", fmt.Sprintf(`{"op":"msg.edit","id":"e","conv":%q,"ref":%q,"cmid":"e","body":"the root!"}`, g.ID, root.ID), &edit) // seq 7
	head = edit.Seq
	for i, c := range []struct {
		extra string
		code  protocol.Code
	}{
		{fmt.Sprintf(`,"reply_to":%q`, elsewhere.ID), protocol.CodeNotFound}, // another conversation's message
		{`,"reply_to":"m_nosuchmessage"`, protocol.CodeNotFound},
		{fmt.Sprintf(`,"thread":%q`, elsewhere.ID), protocol.CodeNotFound},
		{`,"thread":"m_nosuchmessage"`, protocol.CodeNotFound},
		{fmt.Sprintf(`,"reply_to":%q`, edit.ID), protocol.CodeBadFrame}, // an edit entry
		{fmt.Sprintf(`,"thread":%q`, t1.ID), protocol.CodeBadFrame},     // a reply in a thread
		{`,"reply_to":"no spaces"`, protocol.CodeBadFrame},
	} {
		id := fmt.Sprint("bad", i)
		bobPhone.fail(id, fmt.Sprintf(`{"op":"send","id":%q,"conv":%q,"cmid":%q,"body":"x"%s}`, id, g.ID, id, c.extra), c.code)
	}
	if got := alice.head(g.ID); got != head {
		t.Fatalf("refused sends stored something: head %d, want %d", got, head)
	}

	// The root's reply count and last reply time, in history and sync.
	checkRoot := func(where string, msgs []natter.Message) {
		t.Helper()
		r := bySeq(msgs, root.Seq)
		if r.ThreadReplies != 3 || r.ThreadLastAt != t3.TS || r.Body != "the root!" {
			t.Fatalf("%s: root %+v, want 3 replies, last at %d", where, r, t3.TS)
		}
		if p := bySeq(msgs, plain.Seq); p.ThreadReplies != 0 || p.Thread != "" {
			t.Fatalf("%s: plain message %+v", where, p)
		}
		if r := bySeq(msgs, re.Seq); r.ReplyTo != root.ID {
			t.Fatalf("%s: reply %+v", where, r)
		}
	}
	checkRoot("history", bobLaptop.history("h", g.ID, ""))
	checkRoot("history after", bobLaptop.history("h2", g.ID, `,"after":0`))
	var s protocol.SyncResult
	bobLaptop.request("y", fmt.Sprintf(`{"op":"sync","id":"y","cursors":{%q:0}}`, g.ID), &s)
	found := false
	for _, sc := range s.Convs {
		if sc.Conv == g.ID {
			checkRoot("sync", sc.Msgs)
			found = true
		}
	}
	if !found {
		t.Fatalf("sync: no page of %s: %+v", g.ID, s)
	}

	// The thread page: the replies in seq order, paged.
	page := func(id, extra string) protocol.HistoryResult {
		t.Helper()
		var h protocol.HistoryResult
		bobLaptop.request(id, fmt.Sprintf(`{"op":"thread","id":%q,"conv":%q,"root":%q%s}`, id, g.ID, root.ID, extra), &h)
		return h
	}
	want := fmt.Sprint([]uint64{t1.Seq, t2.Seq, t3.Seq})
	if h := page("th", ""); fmt.Sprint(seqsOf(h.Msgs)) != want || h.More || h.Msgs[1].Body != "in thread 2" {
		t.Fatalf("thread page: %v more %v, want %s", seqsOf(h.Msgs), h.More, want)
	}
	if h := page("th2", `,"limit":2`); fmt.Sprint(seqsOf(h.Msgs)) != fmt.Sprint([]uint64{t2.Seq, t3.Seq}) || !h.More {
		t.Fatalf("newest 2: %v more %v", seqsOf(h.Msgs), h.More)
	}
	if h := page("th3", fmt.Sprintf(`,"before":%d`, t2.Seq)); fmt.Sprint(seqsOf(h.Msgs)) != fmt.Sprint([]uint64{t1.Seq}) || h.More {
		t.Fatalf("before %d: %v more %v", t2.Seq, seqsOf(h.Msgs), h.More)
	}
	if h := page("th4", fmt.Sprintf(`,"after":%d,"limit":1`, t1.Seq)); fmt.Sprint(seqsOf(h.Msgs)) != fmt.Sprint([]uint64{t2.Seq}) || !h.More {
		t.Fatalf("after %d: %v more %v", t1.Seq, seqsOf(h.Msgs), h.More)
	}
	bobLaptop.fail("th5", fmt.Sprintf(`{"op":"thread","id":"th5","conv":%q,"root":"m_nosuchmessage"}`, g.ID), protocol.CodeNotFound)
	bobLaptop.fail("th6", fmt.Sprintf(`{"op":"thread","id":"th6","conv":%q,"root":%q}`, other.ID, root.ID), protocol.CodeNotFound)
	carol := mustDial(t, e2, "carol")
	carol.fail("th7", fmt.Sprintf(`{"op":"thread","id":"th7","conv":%q,"root":%q}`, g.ID, root.ID), protocol.CodeNotMember)

	// REST: the same page.
	url := "http://" + e2.Addr() + "/v1/conversations/" + g.ID + "/threads/" + root.ID + "?limit=2"
	code, _, body := restCall(t, "GET", url, token(t, "bob"), "")
	var h protocol.HistoryResult
	if err := json.Unmarshal(body, &h); code != 200 || err != nil || fmt.Sprint(seqsOf(h.Msgs)) != fmt.Sprint([]uint64{t2.Seq, t3.Seq}) || !h.More {
		t.Fatalf("REST thread page: %d %s", code, body)
	}
	// REST send with reply_to and thread.
	url = "http://" + e1.Addr() + "/v1/conversations/" + g.ID + "/messages"
	if code, _, body := restCall(t, "POST", url, token(t, "alice"), fmt.Sprintf(`{"cmid":"rs","body":"via REST","thread":%q}`, root.ID)); code != 201 {
		t.Fatalf("REST thread reply: %d %s", code, body)
	}
	if code, ec, body := restCall(t, "POST", url, token(t, "alice"), `{"cmid":"rs2","body":"x","reply_to":"m_nosuchmessage"}`); code != 404 || ec != string(protocol.CodeNotFound) {
		t.Fatalf("REST reply to an unknown message: %d %s", code, body)
	}
	if h := page("th8", ""); len(h.Msgs) != 4 || h.Msgs[3].Body != "via REST" {
		t.Fatalf("thread page after the REST reply: %v", seqsOf(h.Msgs))
	}
}

// TestThreadFromTheArchive: with a hot tier of 2, a thread's root and its
// first replies are read back from the archive: a reply to the archived
// root is accepted, the thread page holds the archived and the hot replies
// in seq order, and the archived root carries its counts.
func TestThreadFromTheArchive(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{streams: streams.Config{HotTier: 2}})
	alice := mustDial(t, m.dev, "alice")
	bob := mustDial(t, m.dev, "bob")
	d := alice.createDirect("bob")
	root := alice.send(d.ID, "root", "the root") // seq 1
	in := fmt.Sprintf(`,"thread":%q`, root.ID)
	t1 := bob.sendWith(d.ID, "t1", "early 1", in) // seq 2
	t2 := bob.sendWith(d.ID, "t2", "early 2", in) // seq 3
	for i := range 70 {
		alice.send(d.ID, fmt.Sprint("f", i), "fill")
	}
	// The root is out of the hot tier now: found in the archive once the
	// persist role has it.
	var t3 natter.Ack
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		bob.write(fmt.Sprintf(`{"op":"send","id":"late","conv":%q,"cmid":"t3","body":"late","reply_to":%q%s}`, d.ID, t1.ID, in))
		f := bob.reply("late")
		if f.T != protocol.FrameRes {
			return fmt.Errorf("late reply: %+v", f.Err)
		}
		return json.Unmarshal(f.Data, &t3)
	})
	want := fmt.Sprint([]uint64{t1.Seq, t2.Seq, t3.Seq})
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var h protocol.HistoryResult
		bob.request("th", fmt.Sprintf(`{"op":"thread","id":"th","conv":%q,"root":%q}`, d.ID, root.ID), &h)
		if got := fmt.Sprint(seqsOf(h.Msgs)); got != want || h.More || h.Msgs[0].Body != "early 1" || h.Msgs[2].ReplyTo != t1.ID {
			return fmt.Errorf("thread page: %s, want %s: %+v", got, want, h.Msgs)
		}
		old := bob.history("h", d.ID, `,"after":0,"limit":1`)
		if len(old) != 1 || old[0].ThreadReplies != 3 || old[0].ThreadLastAt != t3.TS {
			return fmt.Errorf("archived root: %+v", old)
		}
		return nil
	})
}

// TestThreadReplyRecordedByPersist: a thread reply appended to the log
// without the edge recording it (an edge that stopped between the append
// and the record) is recorded by the persist role: the root counts it and
// the thread page holds it, once.
func TestThreadReplyRecordedByPersist(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{})
	alice := mustDial(t, m.dev, "alice")
	d := alice.createDirect("bob")
	root := alice.send(d.ID, "root", "the root")
	in := fmt.Sprintf(`,"thread":%q`, root.ID)
	viaEdge := alice.sendWith(d.ID, "t1", "via the edge", in)
	ctx := context.Background()
	nc := testenv.Connect(t, m.dev.NATSURL())
	log, err := msglog.New(ctx, nc, testenv.JetStream(t, nc), msglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := log.Append(ctx, msglog.Send{Conv: d.ID, From: "bob", Cmid: "t2", Body: "edge died", Thread: root.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]uint64{viaEdge.Seq, raw.Seq})
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var h protocol.HistoryResult
		alice.request("th", fmt.Sprintf(`{"op":"thread","id":"th","conv":%q,"root":%q}`, d.ID, root.ID), &h)
		if got := fmt.Sprint(seqsOf(h.Msgs)); got != want {
			return fmt.Errorf("thread page: %s, want %s", got, want)
		}
		if r := bySeq(alice.history("h", d.ID, ""), root.Seq); r.ThreadReplies != 2 || r.ThreadLastAt != raw.TS {
			return fmt.Errorf("root: %+v", r)
		}
		return nil
	})
}
