package convsvc_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// A page of list reads the summaries from the SUMMARIES bucket: a service
// instance that never listed the user (a restarted one) answers without
// one store lookup per conversation, and a member change drops the
// group's copy, so the next page shows the change.
func TestListSummariesFromBucket(t *testing.T) {
	t.Parallel()
	var f finds
	e := newEnv(t, envConfig{monitor: f.monitor(), summaries: true})
	u := names("alice", "bob", "carol")
	alice, bob, carol := u[0], u[1], u[2]
	g := group(t, e, alice, bob)
	const n = 40
	for i := range n {
		direct(t, e, alice, fmt.Sprintf("%sp%d", alice, i))
	}
	list := func() map[string]natter.Conversation {
		t.Helper()
		got, err := e.cl.List(ctxT(t), alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n+1 {
			t.Fatalf("listed %d, want %d", len(got), n+1)
		}
		out := make(map[string]natter.Conversation, len(got))
		for _, c := range got {
			out[c.ID] = c
		}
		return out
	}
	first := list() // writes the summaries back
	if c := first[g]; c.MemberCount != 2 || !slices.Equal(c.Members, []string{alice, bob}) {
		t.Fatalf("group before: %+v", c)
	}
	ids := make([]string, 0, len(first))
	for id := range first {
		ids = append(ids, id)
	}
	ents, err := e.sums.Get(ctxT(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !ents[id].Found || ents[id].Conv.ID != id || ents[id].Conv.MemberCount != first[id].MemberCount {
			t.Fatalf("bucket entry of %s: %+v, want the listed summary", id, ents[id])
		}
	}

	// A new instance (nothing cached) alone, as after a restart.
	if err := e.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	e.svc = e.startService(t)
	f.start()
	again := list()
	f.stop()
	if k := countColl(&f, store.CollConversations); k != 0 {
		t.Fatalf("a restarted instance read %d conversations from the store for a page of %d; want 0 (the bucket has them)", k, n+1)
	}
	for id, c := range first {
		if a := again[id]; a.Kind != c.Kind || a.MemberCount != c.MemberCount || !slices.Equal(a.Members, c.Members) || a.CreatedAt != c.CreatedAt {
			t.Fatalf("%s from the bucket: %+v, want %+v", id, a, c)
		}
	}

	// A member change drops the group's copy: the next page shows it.
	if err := e.cl.AddMembers(ctxT(t), alice, g, []string{carol}); err != nil {
		t.Fatal(err)
	}
	if c := list()[g]; c.MemberCount != 3 || !slices.Equal(c.Members, []string{alice, bob, carol}) {
		t.Fatalf("group after the add: %+v", c)
	}
	ents, err = e.sums.Get(ctxT(t), []string{g})
	if err != nil || ents[g].Conv.MemberCount != 3 {
		t.Fatalf("bucket entry of the group after the add and a page: %+v (%v)", ents[g], err)
	}
}

// countColl counts the finds f saw on coll.
func countColl(f *finds, coll string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := 0
	for _, c := range f.colls {
		if c == coll {
			k++
		}
	}
	return k
}

// TestListSummariesFromInstance: an instance keeps the summaries it read
// from the SUMMARIES bucket, so listing the same pages again sends no read
// of the bucket (one round trip less per page), and a change (its notice)
// still shows on the next page: a member add and a rename of a group.
func TestListSummariesFromInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{summaries: true})
	u := names("alice", "bob", "carol")
	alice, bob, carol := u[0], u[1], u[2]
	g := group(t, e, alice, bob)
	const n = 30
	for i := range n {
		direct(t, e, alice, fmt.Sprintf("%sq%d", alice, i))
	}
	watch := e.connect(t)
	var reads atomic.Int64
	sub, err := watch.Subscribe(kvbatch.BucketDirectGet(jetstream.JetStreamOptions{}, subjects.BucketSummaries)+".>", func(*nats.Msg) { reads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	sub2, err := watch.Subscribe(kvbatch.BucketDirectGet(jetstream.JetStreamOptions{}, subjects.BucketSummaries), func(*nats.Msg) { reads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Unsubscribe()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	list := func() map[string]natter.Conversation {
		t.Helper()
		got, err := e.cl.List(ctxT(t), alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n+1 {
			t.Fatalf("listed %d, want %d", len(got), n+1)
		}
		out := make(map[string]natter.Conversation, len(got))
		for _, c := range got {
			out[c.ID] = c
		}
		return out
	}
	list() // reads the bucket (and the store), keeps them
	if reads.Load() == 0 {
		t.Fatal("the first listing read nothing from the SUMMARIES bucket: the watch sees nothing")
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	before := reads.Load()
	again := list()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	if k := reads.Load() - before; k != 0 {
		t.Fatalf("listing again read the SUMMARIES bucket %d times, want none (the instance has them)", k)
	}
	if c := again[g]; c.MemberCount != 2 {
		t.Fatalf("group: %+v", c)
	}
	if err := e.cl.AddMembers(ctxT(t), alice, g, []string{carol}); err != nil {
		t.Fatal(err)
	}
	if c := list()[g]; c.MemberCount != 3 || !slices.Equal(c.Members, []string{alice, bob, carol}) {
		t.Fatalf("group after the add: %+v", c)
	}
	if err := e.cl.Rename(ctxT(t), alice, g, "renamed"); err != nil {
		t.Fatal(err)
	}
	if c := list()[g]; c.Name != "renamed" {
		t.Fatalf("group after the rename: %+v", c)
	}
}
