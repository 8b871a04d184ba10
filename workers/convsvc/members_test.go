package convsvc_test

import (
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

func testMembersAdd(t *testing.T, e *env) {
	u := names("alice", "bob", "carol", "dave", "erin", "frank", "gina")
	a, b, c, d := u[0], u[1], u[2], u[3]
	g := group(t, e, a, b)
	dm := direct(t, e, a, b)
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("m%d_%s", i, a)
	}
	cases := []struct {
		name, user, conv string
		users            []string
		code             string
	}{
		{"member adds", b, g, []string{c}, convapi.CodeForbidden},
		{"owner adds", a, g, []string{c, c}, ""},
		{"again is no change", a, g, []string{c}, ""},
		{"outsider", d, g, []string{d}, convapi.CodeNotMember},
		{"unknown conversation", a, "g_nope", []string{d}, convapi.CodeNotMember},
		{"direct", a, dm, []string{c}, convapi.CodeForbidden},
		{"group too big", a, g, u[3:], convapi.CodeTooBig},
		{"too many users in one request", a, g, many, convapi.CodeTooBig},
		{"no users", a, g, nil, convapi.CodeBadFrame},
		{"invalid user", a, g, []string{d, "e*"}, convapi.CodeBadFrame},
		{"invalid conv", a, "g 1", []string{d}, convapi.CodeBadFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.cl.AddMembers(ctxT(t), tc.user, tc.conv, tc.users), tc.code)
		})
	}
	got, err := e.cl.MembersList(ctxT(t), a, g)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values([]string{a, b, c})); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v (refused adds store nothing)", got, want)
	}
	if convs, _ := e.cl.List(ctxT(t), c); len(convs) != 1 || convs[0].ID != g {
		t.Fatalf("carol's list %+v", convs)
	}
}

func testMembersRemove(t *testing.T, e *env) {
	u := names("alice", "bob", "carol", "dave")
	a, b, c, d := u[0], u[1], u[2], u[3]
	g := group(t, e, a, b, c, d)
	dm := direct(t, e, a, b)
	cases := []struct {
		name, user, conv string
		users            []string
		code             string
	}{
		{"member removes another", b, g, []string{c}, convapi.CodeForbidden},
		{"member removes self and another", b, g, []string{b, c}, convapi.CodeForbidden},
		{"member leaves", b, g, []string{b}, ""},
		{"former member leaves again", b, g, []string{b}, ""},
		{"former member removes another", b, g, []string{c}, convapi.CodeNotMember},
		{"owner (the creator) removes", a, g, []string{c}, ""},
		{"owner leaves", a, g, []string{a}, convapi.CodeForbidden},
		{"non-member is no change", a, g, []string{"nobody"}, ""},
		{"unknown conversation", a, "g_nope", []string{b}, convapi.CodeNotMember},
		{"leaving an unknown conversation", a, "g_nope", []string{a}, ""},
		{"direct", a, dm, []string{a}, convapi.CodeForbidden},
		{"no users", a, g, []string{}, convapi.CodeBadFrame},
		{"invalid user", a, g, []string{""}, convapi.CodeBadFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.cl.RemoveMembers(ctxT(t), tc.user, tc.conv, tc.users), tc.code)
		})
	}
	got, err := e.cl.Members(ctxT(t), g)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values([]string{a, d})); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if convs, _ := e.cl.List(ctxT(t), b); len(convs) != 1 || convs[0].ID != dm {
		t.Fatalf("bob's list after leaving %+v", convs)
	}
}

func testMembersList(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	g := group(t, e, b, a)
	want := slices.Sorted(slices.Values([]string{a, b}))
	t.Run("members.list", func(t *testing.T) {
		cases := []struct{ name, user, conv, code string }{
			{"member", a, g, ""},
			{"outsider", c, g, convapi.CodeNotMember},
			{"unknown conversation", a, "g_nope", convapi.CodeNotMember},
			{"invalid user", "a b", g, convapi.CodeBadFrame},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := e.cl.MembersList(ctxT(t), tc.user, tc.conv)
				wantCode(t, err, tc.code)
				if tc.code == "" && !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			})
		}
	})
	t.Run("members", func(t *testing.T) {
		cases := []struct{ name, conv, code string }{
			{"group", g, ""},
			{"unknown conversation", "g_nope", convapi.CodeNotFound},
			{"missing conv", "", convapi.CodeBadFrame},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := e.cl.Members(ctxT(t), tc.conv)
				wantCode(t, err, tc.code)
				if tc.code == "" && !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			})
		}
	})
}

// testNotice: every member change publishes an empty notice on
// subjects.MembersChanged(conv).
func testNotice(t *testing.T, e *env) {
	u := names("alice", "bob")
	g := group(t, e, u[0])
	sub, err := e.nc.SubscribeSync(subjects.MembersChanged(g))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return e.cl.AddMembers(ctxT(t), u[0], g, []string{u[1]}) },
		func() error { return e.cl.RemoveMembers(ctxT(t), u[1], g, []string{u[1]}) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("step %d: no notice: %v", i, err)
		}
		// pushed: the service pushed the change's conv frames itself.
		if want := `{"users":["` + u[1] + `"],"pushed":true}`; string(msg.Data) != want {
			t.Fatalf("notice body %s, want %s", msg.Data, want)
		}
	}
	// A refused change publishes nothing.
	wantCode(t, e.cl.AddMembers(ctxT(t), u[1], g, []string{u[1]}), convapi.CodeNotMember)
	if msg, err := sub.NextMsg(100 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("notice after a refused change: %v %v", msg, err)
	}
}
