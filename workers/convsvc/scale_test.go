package convsvc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

// TestReplicasMembership: concurrent member changes of one group sent to
// two service instances on the same embedded store lose nothing: every add
// and leave is in the member list, the member count and each user's list.
// The changes of one group run one at a time, so on a loaded machine some
// wait past the store timeout and answer unavailable; they are retried as
// a client does (a change cut short is completed by its retry).
func TestReplicasMembership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.startService(t)
	other := convapi.NewClient(e.connect(t), 0)
	u := names("alice", "bob")
	a := u[0]
	leavers := names("l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7")
	g := group(t, e, a, append([]string{u[1]}, leavers...)...)
	const adders = 16
	var wg sync.WaitGroup
	errs := make(chan error, adders+len(leavers))
	var added []string
	for i := range adders {
		batch := []string{fmt.Sprintf("%s_a%d", a, i), fmt.Sprintf("%s_b%d", a, i), fmt.Sprintf("%s_c%d", a, i)}
		added = append(added, batch...)
		cl := e.cl
		if i%2 == 1 {
			cl = other
		}
		wg.Go(func() { errs <- retried(func() error { return cl.AddMembers(ctxT(t), a, g, batch) }) })
	}
	for i, l := range leavers {
		cl := e.cl
		if i%2 == 0 {
			cl = other
		}
		wg.Go(func() { errs <- retried(func() error { return cl.RemoveMembers(ctxT(t), l, g, []string{l}) }) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := append([]string{a, u[1]}, added...)
	slices.Sort(want)
	got, err := e.cl.Members(ctxT(t), g)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("members %v (%v), want %v", got, err, want)
	}
	if n, err := e.st.MemberCount(ctxT(t), g); err != nil || n != len(want) {
		t.Fatalf("member count %d (%v), want %d", n, err, len(want))
	}
	for _, m := range want {
		if convs, err := e.st.UserConversations(ctxT(t), m); err != nil || !slices.Equal(convs, []string{g}) {
			t.Fatalf("%s's list %v (%v), want [%s]", m, convs, err, g)
		}
	}
	for _, l := range leavers {
		if convs, _ := e.st.UserConversations(ctxT(t), l); len(convs) != 0 {
			t.Fatalf("%s left but lists %v", l, convs)
		}
	}
}

// TestDirectCreateRace: creators of the same pair on two instances at once
// all get the one conversation, listed once by each user.
func TestDirectCreateRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.startService(t)
	other := convapi.NewClient(e.connect(t), 0)
	for round := range 5 {
		u := names(fmt.Sprintf("x%d", round), fmt.Sprintf("y%d", round))
		ids := make(chan string, 8)
		var wg sync.WaitGroup
		for i := range cap(ids) {
			cl, from, with := e.cl, u[0], u[1]
			if i%2 == 1 {
				cl, from, with = other, u[1], u[0]
			}
			wg.Go(func() {
				c, err := cl.Create(ctxT(t), convapi.CreateRequest{User: from, Kind: natter.KindDirect, With: with})
				if err != nil {
					t.Error(err)
				}
				ids <- c.ID
			})
		}
		wg.Wait()
		close(ids)
		want := natter.DirectID(u[0], u[1])
		for id := range ids {
			if id != want {
				t.Fatalf("create answered %q, want %s", id, want)
			}
		}
		for _, m := range u {
			if convs, err := e.st.UserConversations(ctxT(t), m); err != nil || !slices.Equal(convs, []string{want}) {
				t.Fatalf("%s's list %v (%v)", m, convs, err)
			}
			if ok, err := e.st.IsMember(ctxT(t), want, m); !ok || err != nil {
				t.Fatalf("%s not a member (%v)", m, err)
			}
		}
	}
}

// TestGroupCap: the group size limit is checked under the group's lock, so
// concurrent adds on two instances cannot overshoot it; the default is
// documented as 100,000 (it was an undocumented 50,000).
func TestGroupCap(t *testing.T) {
	t.Parallel()
	if convsvc.DefaultMaxGroupSize != 100_000 {
		t.Fatalf("default group size limit %d, docs say 100,000", convsvc.DefaultMaxGroupSize)
	}
	e := newEnv(t, envConfig{svc: convsvc.Config{MaxGroupSize: 6}})
	e.startService(t)
	other := convapi.NewClient(e.connect(t), 0)
	u := names("alice", "bob")
	g := group(t, e, u[0], u[1])
	errs := make(chan error, 4)
	for i := range cap(errs) {
		cl := e.cl
		if i%2 == 1 {
			cl = other
		}
		batch := []string{fmt.Sprintf("%s_n%d", u[0], i), fmt.Sprintf("%s_m%d", u[0], i)}
		go func() { errs <- cl.AddMembers(ctxT(t), u[0], g, batch) }()
	}
	ok, tooBig := 0, 0
	for range cap(errs) {
		err := <-errs
		var se *convapi.Error
		switch {
		case err == nil:
			ok++
		case errors.As(err, &se) && se.Code == convapi.CodeTooBig && strings.Contains(se.Msg, "at most 6"):
			tooBig++
		default:
			t.Fatalf("add: %v", err)
		}
	}
	members, err := e.cl.Members(ctxT(t), g)
	if err != nil || ok != 2 || tooBig != 2 || len(members) != 6 {
		t.Fatalf("%d adds took, %d too big, %d members (%v); want 2, 2, 6", ok, tooBig, len(members), err)
	}
}

// TestListPages: list answers pages of at most ListPageSize conversations
// that follow on by "next", each with member_count, and with the members
// of groups up to MaxInlineMembers only.
func TestListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	u := names("alice", "bob")
	a := u[0]
	big := make([]string, convapi.MaxInlineMembers)
	for i := range big {
		big[i] = fmt.Sprintf("%s_m%d", a, i)
	}
	bigID := group(t, e, a, big...)
	want := []string{bigID}
	for i := range convapi.ListPageSize + 20 {
		want = append(want, direct(t, e, a, fmt.Sprintf("%s_d%d", a, i)))
	}
	slices.Sort(want)
	var got []string
	req := convapi.ListRequest{User: a}
	for pages := 0; ; pages++ {
		if pages > 2 {
			t.Fatal("more than 2 pages")
		}
		msg, err := e.nc.Request(subjects.ConvEndpoint(convapi.OpList), mustJSON(t, req), stepTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var page convapi.ListReply
		if err := json.Unmarshal(msg.Data, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Convs) > convapi.ListPageSize {
			t.Fatalf("page of %d", len(page.Convs))
		}
		for _, c := range page.Convs {
			got = append(got, c.ID)
			switch {
			case c.ID == bigID:
				if c.Members != nil || c.MemberCount != convapi.MaxInlineMembers+1 {
					t.Fatalf("big group %+v, want member_count %d and no members", c, convapi.MaxInlineMembers+1)
				}
			case len(c.Members) != 2 || c.MemberCount != 2:
				t.Fatalf("direct %+v, want its two members", c)
			}
		}
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d, want %d", len(got), len(want))
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// retried calls fn until it answers something else than unavailable, at
// most 10 times.
func retried(fn func() error) error {
	var err error
	for range 10 {
		var se *convapi.Error
		if err = fn(); !errors.As(err, &se) || se.Code != convapi.CodeUnavailable {
			return err
		}
	}
	return err
}

// TestListSummariesFollowChanges: the summaries list answers from (cached
// per instance) show a member change made through another instance in the
// list that follows the change's reply.
func TestListSummariesFollowChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	second := convapi.NewClient(e.connect(t), 0)
	e.startService(t)
	u := names("alice", "bob", "carol")
	g := group(t, e, u[0], u[1])
	for i, add := range []string{u[2], "dave" + u[0]} {
		for range 4 { // both instances cache it
			if _, err := e.cl.List(ctxT(t), u[0]); err != nil {
				t.Fatal(err)
			}
		}
		if err := second.AddMembers(ctxT(t), u[0], g, []string{add}); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			got, err := e.cl.List(ctxT(t), u[0])
			if err != nil || len(got) != 1 || got[0].MemberCount != 3+i || !slices.Contains(got[0].Members, add) {
				t.Fatalf("list after adding %s: %+v (%v)", add, got, err)
			}
		}
	}
}
