package convsvc_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

func TestModeration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{svc: convsvc.Config{MaxGroupSize: 20, MaxUsersPerRequest: 10}})
	t.Run("matrix", func(t *testing.T) { t.Parallel(); testModerationMatrix(t, e) })
	t.Run("state", func(t *testing.T) { t.Parallel(); testModerationState(t, e) })
	t.Run("bad requests", func(t *testing.T) { t.Parallel(); testModerationBad(t, e) })
}

func moderate(t *testing.T, e *env, req convapi.ModerateRequest) error {
	t.Helper()
	return e.cl.Moderate(ctxT(t), req)
}

// testModerationMatrix runs every service action of the permission table
// for each role (owner, admin, member, non-member) and on a direct
// conversation, each on a fresh group, against convapi.Permit (which
// TestPermitMatrix checks against docs/protocol.md): a refused request
// answers the code and leaves the group's rev as it was.
func testModerationMatrix(t *testing.T, e *env) {
	type action struct {
		name   string
		act    convapi.Action
		target convapi.Role // the role of the target the action names
		do     func(t *testing.T, actor, conv string, who map[convapi.Role]string) error
	}
	// pick names the target of role r: someone else than the actor when
	// the actor has that role (acting on oneself is a leave).
	pick := func(who map[convapi.Role]string, r convapi.Role) string {
		if who[r] == who["actor"] {
			return who[r+"2"]
		}
		return who[r]
	}
	announce := true
	desc := "d"
	acts := []action{
		{"members.add", convapi.ActAddMembers, convapi.RoleMember, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
			return e.cl.AddMembers(ctxT(t), actor, conv, []string{who["new"]})
		}},
		{"rename", convapi.ActRename, convapi.RoleMember, func(t *testing.T, actor, conv string, _ map[convapi.Role]string) error {
			return e.cl.Rename(ctxT(t), actor, conv, "renamed")
		}},
		{"conv.update", convapi.ActUpdate, convapi.RoleMember, func(t *testing.T, actor, conv string, _ map[convapi.Role]string) error {
			return moderate(t, e, convapi.ModerateRequest{User: actor, Conv: conv, Action: convapi.ModUpdate, Description: &desc, Announce: &announce})
		}},
		{"owner.transfer", convapi.ActTransfer, convapi.RoleMember, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
			return moderate(t, e, convapi.ModerateRequest{User: actor, Conv: conv, Action: convapi.ModTransfer, To: who["other"]})
		}},
	}
	for _, target := range []convapi.Role{convapi.RoleMember, convapi.RoleAdmin, convapi.RoleOwner} {
		acts = append(acts,
			action{"members.remove", convapi.ActRemoveMember, target, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
				return e.cl.RemoveMembers(ctxT(t), actor, conv, []string{pick(who, target)})
			}},
			action{"members.mute", convapi.ActMute, target, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
				return moderate(t, e, convapi.ModerateRequest{User: actor, Conv: conv, Action: convapi.ModMute, Users: []string{pick(who, target)}, DurationMS: 60_000})
			}},
			action{"admins.add", convapi.ActAdmins, target, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
				return moderate(t, e, convapi.ModerateRequest{User: actor, Conv: conv, Action: convapi.ModAdminsAdd, Users: []string{pick(who, target)}})
			}},
			action{"admins.remove", convapi.ActAdmins, target, func(t *testing.T, actor, conv string, who map[convapi.Role]string) error {
				return moderate(t, e, convapi.ModerateRequest{User: actor, Conv: conv, Action: convapi.ModAdminsRemove, Users: []string{pick(who, target)}})
			}},
		)
	}
	acts = append(acts, action{"leave", convapi.ActLeave, convapi.RoleMember, func(t *testing.T, actor, conv string, _ map[convapi.Role]string) error {
		return e.cl.RemoveMembers(ctxT(t), actor, conv, []string{actor})
	}})
	for _, a := range acts {
		for _, role := range append(slices.Clone(convapi.Roles), "direct") {
			t.Run(a.name+"/"+string(a.target)+"/by-"+string(role), func(t *testing.T) {
				u := names("owner", "admin", "member", "other", "outsider", "new", "admin2")
				who := map[convapi.Role]string{convapi.RoleOwner: u[0], convapi.RoleAdmin: u[1], convapi.RoleMember: u[2], "other": u[3],
					convapi.RoleNone: u[4], "new": u[5], convapi.RoleAdmin + "2": u[6], convapi.RoleMember + "2": u[3], convapi.RoleOwner + "2": u[0]}
				var conv string
				actor := who[role]
				kind := natter.KindGroup
				if role == "direct" {
					kind, actor = natter.KindDirect, u[0]
					conv = direct(t, e, u[0], u[2])
				} else {
					conv = group(t, e, u[0], u[1], u[2], u[3], u[6])
					if err := moderate(t, e, convapi.ModerateRequest{User: u[0], Conv: conv, Action: convapi.ModAdminsAdd, Users: []string{u[1], u[6]}}); err != nil {
						t.Fatal(err)
					}
				}
				who["actor"] = actor
				actorRole := convapi.Role(role)
				if role == "direct" {
					actorRole = convapi.RoleMember
				}
				want := convapi.Permit(kind, actorRole, a.act, a.target)
				if a.act == convapi.ActLeave && role == convapi.RoleNone {
					want = nil // leaving what one is not in is no change (a retried leave)
				}
				before := rev(t, e, u[0], conv)
				err := a.do(t, actor, conv, who)
				if want == nil {
					wantCode(t, err, "")
					return
				}
				var ce *convapi.Error
				errors.As(want, &ce)
				wantCode(t, err, ce.Code)
				if after := rev(t, e, u[0], conv); after != before {
					t.Fatalf("refused %s moved the rev from %d to %d", a.name, before, after)
				}
			})
		}
	}
}

func rev(t *testing.T, e *env, user, conv string) int64 {
	t.Helper()
	c, err := e.cl.Get(ctxT(t), user, conv)
	if err != nil {
		t.Fatal(err)
	}
	return c.Rev
}

// testModerationState follows a group through the changes: what conv.get
// and the internal members op (the member caches' load) return, the rev,
// and the membership notice of each change.
func testModerationState(t *testing.T, e *env) {
	u := names("alice", "bob", "carol", "dave")
	a, b, c, d := u[0], u[1], u[2], u[3]
	g := group(t, e, a, b, c, d)
	sub, err := e.nc.SubscribeSync(subjects.MembersChanged(g))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := e.cl.Get(ctxT(t), b, g)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != a || len(got.Admins) != 0 || got.Announce || len(got.Muted) != 0 {
		t.Fatalf("new group %+v: owner the creator, nothing else", got)
	}
	yes, text, url := true, "Planning", "https://x.test/a.png"
	start := time.Now().UnixMilli()
	steps := []convapi.ModerateRequest{
		{User: a, Action: convapi.ModAdminsAdd, Users: []string{b}},
		{User: b, Action: convapi.ModMute, Users: []string{d}, DurationMS: 3_600_000},
		{User: b, Action: convapi.ModUpdate, Description: &text, AvatarURL: &url, Announce: &yes},
		{User: a, Action: convapi.ModTransfer, To: c},
	}
	for i, st := range steps {
		st.Conv = g
		if err := moderate(t, e, st); err != nil {
			t.Fatalf("step %d (%s): %v", i, st.Action, err)
		}
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("step %d (%s): no notice: %v", i, st.Action, err)
		}
		if r := rev(t, e, a, g); r != int64(i+1) {
			t.Fatalf("step %d: rev %d, want %d", i, r, i+1)
		}
	}
	// Again is no change: same rev, no notice.
	if err := moderate(t, e, convapi.ModerateRequest{User: b, Conv: g, Action: convapi.ModUpdate, Announce: &yes}); err != nil {
		t.Fatal(err)
	}
	if r := rev(t, e, a, g); r != 4 {
		t.Fatalf("no change moved the rev to %d", r)
	}
	got, err = e.cl.Get(ctxT(t), d, g)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != c || !slices.Equal(got.Admins, slices.Sorted(slices.Values([]string{a, b}))) || !got.Announce ||
		got.Description != text || got.AvatarURL != url || len(got.Muted) != 1 || got.Muted[0].User != d || got.Muted[0].Until < start+3_600_000 {
		t.Fatalf("after the changes %+v", got)
	}
	_, m, err := e.cl.MembersMod(ctxT(t), g)
	if err != nil {
		t.Fatal(err)
	}
	if m.Owner != c || !m.Announce || m.MutedUntil(d, time.Now().UnixMilli()) == 0 || m.RoleOf(b) != convapi.RoleAdmin {
		t.Fatalf("members op moderation %+v", m)
	}
	// The old owner may leave now; a removed admin loses the role and a
	// removed member the mute.
	if err := e.cl.RemoveMembers(ctxT(t), a, g, []string{a}); err != nil {
		t.Fatal(err)
	}
	if err := e.cl.RemoveMembers(ctxT(t), c, g, []string{d}); err != nil {
		t.Fatal(err)
	}
	got, err = e.cl.Get(ctxT(t), b, g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Admins, []string{b}) || len(got.Muted) != 0 {
		t.Fatalf("after the removals %+v: admins [%s], no mutes", got, b)
	}
}

func testModerationBad(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	g := group(t, e, a, b)
	long := string(make([]byte, convapi.MaxDescriptionLen+1))
	for _, tc := range []struct {
		name string
		req  convapi.ModerateRequest
		code string
	}{
		{"no action", convapi.ModerateRequest{User: a, Conv: g}, convapi.CodeBadFrame},
		{"unknown action", convapi.ModerateRequest{User: a, Conv: g, Action: "x"}, convapi.CodeBadFrame},
		{"mute without duration", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModMute, Users: []string{b}}, convapi.CodeBadFrame},
		{"mute too long", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModMute, Users: []string{b}, DurationMS: convapi.MaxMuteDuration.Milliseconds() + 1}, convapi.CodeBadFrame},
		{"mute a non-member", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModMute, Users: []string{c}, DurationMS: 1000}, convapi.CodeForbidden},
		{"appoint a non-member", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModAdminsAdd, Users: []string{c}}, convapi.CodeForbidden},
		{"transfer to a non-member", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModTransfer, To: c}, convapi.CodeForbidden},
		{"transfer without to", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModTransfer}, convapi.CodeBadFrame},
		{"update nothing", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModUpdate}, convapi.CodeBadFrame},
		{"description too long", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModUpdate, Description: &long}, convapi.CodeBadFrame},
		{"no users", convapi.ModerateRequest{User: a, Conv: g, Action: convapi.ModUnmute}, convapi.CodeBadFrame},
		{"unknown group", convapi.ModerateRequest{User: a, Conv: "g_nope", Action: convapi.ModUnmute, Users: []string{b}}, convapi.CodeNotMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, moderate(t, e, tc.req), tc.code)
		})
	}
	if r := rev(t, e, a, g); r != 0 {
		t.Fatalf("refused requests moved the rev to %d", r)
	}
}
