package convsvc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/workers/store"
)

// finds records the filters of the find commands the store sends while on.
type finds struct {
	mu      sync.Mutex
	on      bool
	filters []bson.Raw
	colls   []string
}

func (f *finds) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.on {
			return
		}
		switch ev.CommandName {
		case "find", "aggregate", "count":
			filter, _ := ev.Command.Lookup("filter").DocumentOK()
			coll, _ := ev.Command.Lookup(ev.CommandName).StringValueOK()
			f.filters = append(f.filters, filter)
			f.colls = append(f.colls, coll)
		}
	}}
}

// start clears the record and turns it on; stop turns it off and returns
// the filters that are not a lone _id equality, and how many finds it saw.
func (f *finds) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on, f.filters, f.colls = true, nil, nil
}

func (f *finds) stop() (notByID []string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = false
	for i, filter := range f.filters {
		elems, _ := filter.Elements()
		if len(elems) != 1 || elems[0].Key() != "_id" || elems[0].Value().Type != bson.TypeString {
			notByID = append(notByID, f.colls[i]+" "+filter.String())
		}
	}
	return notByID, len(f.filters)
}

// archiveConv stores n messages of a new group of a and b, interleaved with
// as many of other conversations, and with blocks unless noBlocks.
func archiveConv(t *testing.T, e *env, a, b string, n int, noBlocks bool) string {
	t.Helper()
	g := group(t, e, a, b)
	var msgs, others []natter.Message
	for seq := uint64(1); seq <= uint64(n); seq++ {
		msgs = append(msgs, natter.Message{ID: fmt.Sprintf("m_%s_%d", g, seq), Conv: g, Seq: seq, From: a, Cmid: fmt.Sprint(seq), Body: fmt.Sprint("hi ", seq), TS: 1})
		other := fmt.Sprintf("%s_other%d", g, seq%7)
		others = append(others, natter.Message{ID: fmt.Sprintf("m_%s_%d", other, seq), Conv: other, Seq: seq/7 + 1, From: a, Cmid: fmt.Sprint(seq), Body: "other", TS: 1})
	}
	for _, batch := range [][]natter.Message{others[:n/2], msgs, others[n/2:]} {
		if _, err := e.st.InsertMessages(ctxT(t), batch); err != nil {
			t.Fatal(err)
		}
	}
	if !noBlocks {
		if _, err := e.st.InsertBlocks(ctxT(t), store.BlocksOf(g, msgs)); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// TestHistoryArchive: pages of archived history come from the blocks, by
// _id only: exactly the messages the paging rules of docs/protocol.md
// select, in order, across block edges and with other conversations in the
// store. A find with any other filter fails the test (on the embedded
// store it scans every stored message).
func TestHistoryArchive(t *testing.T) {
	t.Parallel()
	var f finds
	e := newEnv(t, envConfig{monitor: f.monitor()})
	u := names("alice", "bob")
	a, b := u[0], u[1]
	const n = 5 * store.BlockSize // 320: the archive holds seqs 1..320
	g := archiveConv(t, e, a, b, n, false)
	after := func(v uint64) *uint64 { return &v }
	type tc struct {
		name     string
		req      convapi.HistoryRequest
		from, to uint64 // want seqs from..to, 0 = none
		more     bool
	}
	cases := []tc{
		{"before 1", convapi.HistoryRequest{Before: 1}, 0, 0, false},
		{"before 2", convapi.HistoryRequest{Before: 2}, 1, 1, false},
		{"oldest page", convapi.HistoryRequest{Before: 51}, 1, 50, false},
		{"oldest page and one", convapi.HistoryRequest{Before: 52}, 2, 51, true},
		{"ends at a block's end", convapi.HistoryRequest{Before: 129, Limit: 64}, 65, 128, true},
		{"one block's start to the next's", convapi.HistoryRequest{Before: 130, Limit: 65}, 65, 129, true},
		{"200 across four blocks", convapi.HistoryRequest{Before: 300, Limit: 200}, 100, 299, true},
		{"newest archived", convapi.HistoryRequest{Before: n + 1, Limit: 200}, n - 199, n, true},
		{"whole archive", convapi.HistoryRequest{Before: n + 1, Limit: convapi.MaxHistoryLimit}, 1, n, false},
		{"after 0", convapi.HistoryRequest{After: after(0), Before: n + 1, Limit: 64}, 1, 64, true},
		{"after a block's end", convapi.HistoryRequest{After: after(64), Before: n + 1, Limit: 200}, 65, 264, true},
		{"after, to before", convapi.HistoryRequest{After: after(100), Before: 129}, 101, 128, false},
		{"after, limited at before", convapi.HistoryRequest{After: after(100), Before: 151, Limit: 50}, 101, 150, false},
		{"after, one short of before", convapi.HistoryRequest{After: after(100), Before: 152, Limit: 50}, 101, 150, true},
		{"after, empty", convapi.HistoryRequest{After: after(100), Before: 101}, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.User, req.Conv = b, g
			f.start()
			page, err := e.cl.History(ctxT(t), req)
			bad, _ := f.stop()
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for s := c.from; s != 0 && s <= c.to; s++ {
				want = append(want, s)
			}
			if got := seqs(page.Msgs); !slices.Equal(got, want) || page.More != c.more {
				t.Fatalf("got %v more=%v, want %v more=%v", got, page.More, want, c.more)
			}
			for _, m := range page.Msgs {
				if m.Conv != g || m.Body != fmt.Sprint("hi ", m.Seq) || m.ID != fmt.Sprintf("m_%s_%d", g, m.Seq) {
					t.Fatalf("message %+v", m)
				}
			}
			if len(bad) > 0 {
				t.Fatalf("archive page read with queries other than by _id: %v", bad)
			}
		})
	}
}

// TestHistoryArchiveCostFlat: a page costs the same finds, all by _id,
// with ten times more messages of other conversations stored.
func TestHistoryArchiveCostFlat(t *testing.T) {
	t.Parallel()
	var f finds
	e := newEnv(t, envConfig{monitor: f.monitor()})
	u := names("alice", "bob")
	g := archiveConv(t, e, u[0], u[1], 4*store.BlockSize, false)
	read := func() int {
		f.start()
		page, err := e.cl.History(ctxT(t), convapi.HistoryRequest{User: u[1], Conv: g, Before: 200, Limit: 150})
		bad, n := f.stop()
		if err != nil || len(page.Msgs) != 150 {
			t.Fatalf("page: %d messages, %v", len(page.Msgs), err)
		}
		if len(bad) > 0 {
			t.Fatalf("archive page read with queries other than by _id: %v", bad)
		}
		return n
	}
	read() // the first also loads the membership
	small := read()
	for i := range 10 {
		archiveConv(t, e, u[0], fmt.Sprint(u[1], "x", i), 4*store.BlockSize, true)
	}
	if big := read(); big != small || small == 0 {
		t.Fatalf("finds per page: %d, then %d with 10x more stored", small, big)
	}
}

// TestHistoryArchiveRepair: a conversation archived before blocks existed
// (messages only) is read from the messages collection once; that read
// writes its blocks, and the next read of them is by _id only. A gap in the
// archive keeps the old reading.
func TestHistoryArchiveRepair(t *testing.T) {
	t.Parallel()
	var f finds
	e := newEnv(t, envConfig{monitor: f.monitor()})
	u := names("alice", "bob")
	a, b := u[0], u[1]
	g := archiveConv(t, e, a, b, 3*store.BlockSize, true)
	req := convapi.HistoryRequest{User: b, Conv: g, Before: 150, Limit: 100}
	want := make([]uint64, 0, 100)
	for s := uint64(50); s < 150; s++ {
		want = append(want, s)
	}
	for round := range 2 {
		f.start()
		page, err := e.cl.History(ctxT(t), req)
		bad, _ := f.stop()
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(page.Msgs); !slices.Equal(got, want) || !page.More {
			t.Fatalf("round %d: got %v more=%v", round, got, page.More)
		}
		if round == 0 && len(bad) == 0 {
			t.Fatal("round 0 read no messages collection: the test proves nothing")
		}
		if round == 1 && len(bad) > 0 {
			t.Fatalf("after the repair: queries other than by _id: %v", bad)
		}
	}
	if nb, err := e.st.CountBlocks(ctxT(t), g); err != nil || nb != 3 {
		t.Fatalf("%d blocks repaired, %v; want 3", nb, err)
	}

	// A conversation with seq 70 missing: pages around it answer as the
	// query says (the newest messages below before), no block 2 is written.
	h := group(t, e, a, b)
	var msgs []natter.Message
	for seq := uint64(1); seq <= 2*store.BlockSize; seq++ {
		if seq != 70 {
			msgs = append(msgs, natter.Message{ID: fmt.Sprintf("m_%s_%d", h, seq), Conv: h, Seq: seq, From: a, Cmid: fmt.Sprint(seq), Body: "hi", TS: 1})
		}
	}
	if _, err := e.st.InsertMessages(ctxT(t), msgs); err != nil {
		t.Fatal(err)
	}
	page, err := e.cl.History(ctxT(t), convapi.HistoryRequest{User: b, Conv: h, Before: 75, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(page.Msgs); !slices.Equal(got, []uint64{63, 64, 65, 66, 67, 68, 69, 71, 72, 73, 74}[1:]) || !page.More {
		t.Fatalf("around the gap: %v more=%v", got, page.More)
	}
	if nb, _ := e.st.CountBlocks(ctxT(t), h); nb != 1 {
		t.Fatalf("%d blocks written around a gap, want 1 (the first)", nb)
	}
}

// TestHistoryArchiveFitsPayload: a page from the blocks is cut to the max
// payload like any page, keeping the end next to the cursor.
func TestHistoryArchiveFitsPayload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{maxPayload: 4096})
	u := names("alice", "bob")
	g := group(t, e, u[0], u[1])
	var msgs []natter.Message
	for seq := uint64(1); seq <= store.BlockSize; seq++ {
		msgs = append(msgs, natter.Message{ID: fmt.Sprintf("m_%s_%d", g, seq), Conv: g, Seq: seq, From: u[0], Cmid: fmt.Sprint(seq), Body: strings.Repeat("x", 1000), TS: 1})
	}
	if _, err := e.st.InsertMessages(ctxT(t), msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.InsertBlocks(ctxT(t), store.BlocksOf(g, msgs)); err != nil {
		t.Fatal(err)
	}
	page, err := e.cl.History(ctxT(t), convapi.HistoryRequest{User: u[1], Conv: g, Before: 65, Limit: 10})
	s := seqs(page.Msgs)
	if err != nil || len(s) == 0 || len(s) >= 10 || s[len(s)-1] != 64 || !page.More {
		t.Fatalf("page before 65: %v more=%v %v: want the newest that fit, more", s, page.More, err)
	}
	zero := uint64(0)
	page, err = e.cl.History(ctxT(t), convapi.HistoryRequest{User: u[1], Conv: g, After: &zero, Before: 65, Limit: 10})
	if s := seqs(page.Msgs); err != nil || len(s) == 0 || len(s) >= 10 || s[0] != 1 || !page.More {
		t.Fatalf("page after 0: %v more=%v %v: want the oldest that fit, more", s, page.More, err)
	}
}
