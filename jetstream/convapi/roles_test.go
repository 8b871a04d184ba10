package convapi_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
)

// TestPermitMatrix checks every cell of the permission table of
// docs/protocol.md ("Group roles") against convapi.Permit: each action
// (with each target role where it has a target) for the owner, an admin, a
// member, a non-member and a direct conversation; and that the table has a
// row for every action and target.
func TestPermitMatrix(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n### Group roles\n")
	if !ok {
		t.Fatal("docs/protocol.md has no Group roles section")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	targeted := map[convapi.Action]bool{convapi.ActRemoveMember: true, convapi.ActMute: true, convapi.ActAdmins: true, convapi.ActDeleteMessage: true}
	type key struct {
		act    convapi.Action
		target convapi.Role
	}
	seen := map[key]bool{}
	cells := 0
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if len(cols) != 7 {
			t.Fatalf("row %q: %d columns, want 7", line, len(cols))
		}
		act := convapi.Action(strings.Trim(strings.Fields(cols[0])[0], "`"))
		target := convapi.Role(cols[1])
		if !targeted[act] {
			if target != "" {
				t.Fatalf("row %q: %s has no target", line, act)
			}
			target = convapi.RoleMember
		}
		seen[key{act, target}] = true
		for i, role := range []convapi.Role{convapi.RoleOwner, convapi.RoleAdmin, convapi.RoleMember, convapi.RoleNone} {
			cells++
			t.Run(string(act)+"/"+string(target)+"/by-"+string(role), func(t *testing.T) {
				checkCell(t, convapi.Permit(natter.KindGroup, role, act, target), cols[2+i])
			})
		}
		cells++
		t.Run(string(act)+"/"+string(target)+"/direct", func(t *testing.T) {
			checkCell(t, convapi.Permit(natter.KindDirect, convapi.RoleMember, act, target), cols[6])
		})
	}
	for _, act := range convapi.Actions {
		targets := []convapi.Role{convapi.RoleMember}
		if targeted[act] {
			targets = []convapi.Role{convapi.RoleMember, convapi.RoleAdmin, convapi.RoleOwner}
		}
		for _, tg := range targets {
			if !seen[key{act, tg}] {
				t.Errorf("the table has no row for %s on %q", act, tg)
			}
		}
	}
	if want := (len(convapi.Actions) + 2*len(targeted)) * 5; cells != want {
		t.Errorf("%d cells checked, want %d", cells, want)
	}
}

func checkCell(t *testing.T, err error, want string) {
	t.Helper()
	switch want {
	case "yes":
		if err != nil {
			t.Fatalf("refused (%v), the table says yes", err)
		}
	case "no":
		if !errors.Is(err, convapi.ErrForbidden) {
			t.Fatalf("got %v, the table says forbidden", err)
		}
	case "`not_member`":
		if !errors.Is(err, convapi.ErrNotMember) {
			t.Fatalf("got %v, the table says not_member", err)
		}
	default:
		t.Fatalf("cell %q: want yes, no or `not_member`", want)
	}
}

// TestCanSend checks the send rules of a group's moderation: mutes (until
// their end) and announcement mode, and that a direct conversation has
// none.
func TestCanSend(t *testing.T) {
	t.Parallel()
	now := int64(1_000_000)
	m := convapi.Moderation{Owner: "o", Admins: []string{"a"}, Muted: []convapi.Mute{{User: "m", Until: now + 1}, {User: "x", Until: now}}}
	for _, tc := range []struct {
		user     string
		announce bool
		ok       bool
	}{
		{"o", false, true}, {"a", false, true}, {"u", false, true}, {"m", false, false}, {"x", false, true},
		{"o", true, true}, {"a", true, true}, {"u", true, false}, {"m", true, false},
	} {
		m.Announce = tc.announce
		for _, mm := range []convapi.Moderation{m, convapi.IndexedModeration(m)} {
			err := mm.CanSend(natter.KindGroup, tc.user, now)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, convapi.ErrForbidden)) {
				t.Errorf("user %s, announce %v: %v, want ok=%v", tc.user, tc.announce, err, tc.ok)
			}
		}
		if err := m.CanSend(natter.KindDirect, tc.user, now); err != nil {
			t.Errorf("direct: %v", err)
		}
	}
}
