package delivery_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/delivery"
)

func userIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "u" + strconv.Itoa(i)
	}
	return out
}

func members(l delivery.Members) []string {
	var out []string
	for id := range l.All() {
		out = append(out, string(id))
	}
	return out
}

// TestPackMembersRoundTrip: whatever the split, every member gets every
// entry exactly once and in order, and no payload passes maxBytes unless
// one member and one entry alone do.
func TestPackMembersRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		members  int
		sizes    []int
		maxBytes int
		msgs     int
	}{
		{"one entry, one message", 5, []int{100}, 1000, 1},
		{"a batch, one message", 3, []int{10, 20, 30}, 1000, 1},
		{"members split", 200, []int{10, 10}, 300, 0},
		{"entries split", 2, []int{400, 400, 400}, 1000, 2},
		{"both split", 300, []int{300, 300, 300}, 1000, 0},
		{"an entry larger than the limit travels alone, to one member a message", 4, []int{10, 2000, 10}, 1000, 1 + 4 + 1},
		{"empty entries", 2, []int{0, 0}, 100, 1},
		{"one member", 1, []int{5}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, in := userIDs(tc.members), entries(tc.sizes...)
			payloads := delivery.PackMembers(ids, in, tc.maxBytes)
			if tc.msgs > 0 && len(payloads) != tc.msgs {
				t.Fatalf("%d payloads, want %d", len(payloads), tc.msgs)
			}
			if tc.msgs == 0 && len(payloads) < 2 {
				t.Fatalf("%d payloads, want a split", len(payloads))
			}
			got := map[string][][]byte{}
			for _, p := range payloads {
				l, parts, err := delivery.SplitMembers(p.Msg("im.dlv.grp.all"))
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Data) > tc.maxBytes && l.Len() > 1 && len(parts) > 1 {
					t.Fatalf("payload of %d bytes (%d members, %d entries) over the limit %d", len(p.Data), l.Len(), len(parts), tc.maxBytes)
				}
				if n := len(members(l)); n != l.Len() {
					t.Fatalf("Len %d, All yields %d", l.Len(), n)
				}
				for _, id := range members(l) {
					got[id] = append(got[id], parts...)
				}
			}
			if len(got) != len(ids) {
				t.Fatalf("%d members reached, want %d", len(got), len(ids))
			}
			everyMemberGotAll(t, ids, in, got)
		})
	}
}

func TestPackMembersNothing(t *testing.T) {
	if p := delivery.PackMembers(nil, entries(3), 100); p != nil {
		t.Fatalf("no members: %d payloads", len(p))
	}
	if p := delivery.PackMembers([]string{"a"}, nil, 100); p != nil {
		t.Fatalf("no entries: %d payloads", len(p))
	}
}

func TestSplitMembersMalformed(t *testing.T) {
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name, list, batch, data string
	}{
		{"no members header", "", "", "abc"},
		{"length not a number", "x", "", "a\nbc"},
		{"length zero", "0", "", "abc"},
		{"length negative", "-1", "", "abc"},
		{"length with a sign", "+1", "", "abc"},
		{"length with a leading zero", "01", "", "abc"},
		{"length past the data", "9", "", "abc"},
		{"empty id in the middle", "4", "", "a\n\nbxyz"},
		{"list ends with a separator", "2", "", "a\nxyz"},
		{"list starts with a separator", "2", "", "\naxyz"},
		{"id with a dot", "3", "", "a.bxyz"},
		{"id with a space", "3", "", "a bxyz"},
		{"id too long", "65", "", long + "xyz"},
		{"entries shorter than their lengths", "1", "2,5", "axyz"},
		{"trailing bytes after the entries", "1", "1,1", "axyzw"},
		{"bad entry length", "1", "1,x", "axy"},
	} {
		m := &nats.Msg{Subject: "im.dlv.grp.all", Data: []byte(tc.data), Header: nats.Header{}}
		if tc.list != "" {
			m.Header.Set(delivery.MembersHeader, tc.list)
		}
		if tc.batch != "" {
			m.Header.Set(delivery.Header, tc.batch)
		}
		if _, _, err := delivery.SplitMembers(m); !errors.Is(err, delivery.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", tc.name, err)
		}
	}
	if _, _, err := delivery.SplitMembers(&nats.Msg{Data: []byte("a\nb")}); !errors.Is(err, delivery.ErrMalformed) {
		t.Errorf("no header at all: err %v, want ErrMalformed", err)
	}
	m := &nats.Msg{Data: []byte("a_1\nB-2xyz"), Header: nats.Header{delivery.MembersHeader: {"7"}, delivery.Header: {"1,2"}}}
	l, parts, err := delivery.SplitMembers(m)
	if err != nil || !slices.Equal(members(l), []string{"a_1", "B-2"}) || fmt.Sprintf("%q", parts) != `["x" "yz"]` {
		t.Fatalf("SplitMembers = %q, %q, %v", members(l), parts, err)
	}
	m = &nats.Msg{Data: []byte(strings.Repeat("y", 64) + "e"), Header: nats.Header{delivery.MembersHeader: {"64"}}}
	if l, parts, err := delivery.SplitMembers(m); err != nil || l.Len() != 1 || len(parts) != 1 || string(parts[0]) != "e" {
		t.Fatalf("a 64-character id: %q, %q, %v", l, parts, err)
	}
}

// FuzzSplitMembers: SplitMembers never panics on any data and headers, and
// gives back exactly what PackMembers packed.
func FuzzSplitMembers(f *testing.F) {
	f.Add([]byte("a\nbxyz"), "3", "1,2", 10)
	f.Add([]byte("alice\nbob\ncarol"), "9", "", 4)
	f.Add([]byte("\n\n"), "1", ",", 1)
	f.Add([]byte{}, "", "", 0)
	f.Fuzz(func(t *testing.T, data []byte, list, batch string, maxBytes int) {
		m := &nats.Msg{Data: data, Header: nats.Header{delivery.MembersHeader: {list}, delivery.Header: {batch}}}
		if l, parts, err := delivery.SplitMembers(m); err == nil {
			n := len(l)
			for _, p := range parts {
				n += len(p)
			}
			if n != len(data) {
				t.Fatalf("%d bytes of members and entries from %d bytes of data", n, len(data))
			}
		}

		// The list and the data as members and entries: the list cut at
		// every '\n' for the ids (the valid ones, once each), the data at
		// every ',' for the entries.
		var ids []string
		for _, id := range strings.Split(list, "\n") {
			if id != "" && !slices.Contains(ids, id) && !strings.ContainsFunc(id, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
			}) && len(id) <= 64 {
				ids = append(ids, id)
			}
		}
		in := bytes.Split(data, []byte(","))
		maxBytes = max(1, maxBytes%4096)
		got := map[string][][]byte{}
		for _, p := range delivery.PackMembers(ids, in, maxBytes) {
			l, parts, err := delivery.SplitMembers(p.Msg("im.dlv.grp.all"))
			if err != nil {
				t.Fatalf("packed payload does not parse: %v", err)
			}
			for id := range l.All() {
				got[string(id)] = append(got[string(id)], parts...)
			}
		}
		everyMemberGotAll(t, ids, in, got)
	})
}

// everyMemberGotAll checks that each of ids got exactly the entries in, in
// order.
func everyMemberGotAll(t *testing.T, ids []string, in [][]byte, got map[string][][]byte) {
	t.Helper()
	for _, id := range ids {
		if len(got[id]) != len(in) {
			t.Fatalf("%s: %d entries, want %d", id, len(got[id]), len(in))
		}
		for i := range in {
			if !bytes.Equal(got[id][i], in[i]) {
				t.Fatalf("%s entry %d: %q, want %q", id, i, got[id][i], in[i])
			}
		}
	}
}
