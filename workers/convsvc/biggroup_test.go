package convsvc_test

import (
	"context"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/convsvc"
)

// TestBigGroup grows a group 1,000 members per members.add and reads them
// all back, through the client and a member cache.
//
// The default run adds 1,000 members. NATTER_BIG_TESTS=1 adds 10,000 (two
// pages of members): on the embedded FerretDB that takes minutes, because
// every member is one upsert in the users collection and FerretDB v1 scans
// the collection for each (measured: 10,000 in 3m10s, the last 1,000 in 30s).
func TestBigGroup(t *testing.T) {
	t.Parallel()
	n, timeout := 1_000, 30*time.Second
	if raceEnabled {
		timeout = 5 * time.Minute // FerretDB is ~10x slower under the race detector
	}
	if os.Getenv("NATTER_BIG_TESTS") != "" {
		n, timeout = 10_000, 30*time.Minute
	}
	e := newEnv(t, envConfig{svc: convsvc.Config{StoreTimeout: timeout}, clientTimeout: timeout})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	owner := names("owner")[0]
	g := group(t, e, owner)
	want := []string{owner}
	start := time.Now()
	for chunk := range n / 1000 {
		users := make([]string, 1000)
		for i := range users {
			users[i] = fmt.Sprintf("u%05d_%s", chunk*1000+i, owner)
		}
		t0 := time.Now()
		if err := e.cl.AddMembers(ctx, owner, g, users); err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		t.Logf("chunk %d: 1,000 members in %s", chunk, time.Since(t0))
		want = append(want, users...)
	}
	t.Logf("added %d members in %s", n, time.Since(start))
	slices.Sort(want)
	got, err := e.cl.Members(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Members returned %d, want %d", len(got), len(want))
	}
	got, err = e.cl.MembersList(ctx, want[len(want)/2], g)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("MembersList returned %d, %v", len(got), err)
	}
	m := newCache(t, e, 0, 0)
	for _, u := range []string{owner, want[0], want[len(want)-1]} {
		if ok, err := m.IsMember(ctx, g, u); err != nil || !ok {
			t.Fatalf("cache IsMember(%s): %v %v", u, ok, err)
		}
	}
	if s := m.Stats(); s.Loads != 1 {
		t.Fatalf("cache stats %+v", s)
	}
}

// TestSmallPayload: with a 4 KiB max payload, members, list and history
// come in pages that fit.
func TestSmallPayload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{maxPayload: 4096})
	u := names("alice", "bob")
	a := u[0]
	var others []string
	for i := range 150 {
		others = append(others, fmt.Sprintf("member%03d_%s", i, a))
	}
	g := group(t, e, a, others[:100]...)
	if err := e.cl.AddMembers(ctxT(t), a, g, others[100:]); err != nil {
		t.Fatal(err)
	}
	got, err := e.cl.Members(ctxT(t), g)
	if want := slices.Sorted(slices.Values(append([]string{a}, others...))); err != nil || !slices.Equal(got, want) {
		t.Fatalf("members: %d %v, want %d", len(got), err, len(want))
	}

	var convs []string
	for range 60 {
		convs = append(convs, group(t, e, u[1]))
	}
	list, err := e.cl.List(ctxT(t), u[1])
	if err != nil || len(list) != len(convs) {
		t.Fatalf("list: %d %v, want %d", len(list), err, len(convs))
	}

	var msgs []natter.Message
	for seq := uint64(1); seq <= 20; seq++ {
		msgs = append(msgs, natter.Message{ID: fmt.Sprintf("m_%s_%d", g, seq), Conv: g, Seq: seq, From: a, Cmid: fmt.Sprint(seq), Body: strings.Repeat("x", 1000), TS: 1})
	}
	if _, err := e.st.InsertMessages(ctxT(t), msgs); err != nil {
		t.Fatal(err)
	}
	page, err := e.cl.History(ctxT(t), convapi.HistoryRequest{User: a, Conv: g, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	s := seqs(page.Msgs)
	if len(s) == 0 || len(s) >= 10 || s[len(s)-1] != 20 || !page.More {
		t.Fatalf("newest page %v more=%v: want the newest that fit, more", s, page.More)
	}
	zero := uint64(0)
	page, err = e.cl.History(ctxT(t), convapi.HistoryRequest{User: a, Conv: g, After: &zero, Limit: 10})
	if s := seqs(page.Msgs); err != nil || len(s) == 0 || s[0] != 1 || !page.More {
		t.Fatalf("oldest page %v more=%v %v: want the oldest that fit, more", s, page.More, err)
	}
}
