package delivery

import (
	"bytes"
	"iter"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

// MembersHeader gives the length in bytes of the member list that starts
// the data of a broadcast (subjects.DeliverGroups).
const MembersHeader = "Natter-Members"

// PackMembers returns the broadcast payloads carrying entries, in order, to
// members: each payload's data is a member list (ids joined by '\n', its
// length in [MembersHeader]) followed by entries as [Pack] lays them out
// ([Header] when there is more than one). A payload has at most maxBytes of
// data unless one member and one entry alone are larger (such an entry
// goes in a message per member). When the list and
// the entries do not fit, the entries are split as Pack splits them (in
// groups of at most half of maxBytes when the list is long), and the
// members in chunks that fit beside each group: every member is in exactly
// one payload of each group, and the groups come in entry order. The list
// is in the data, not in a header, because a group can have thousands of
// members (headers are meant to be small; nats-server bounds them).
func PackMembers(members []string, entries [][]byte, maxBytes int) []Payload {
	if len(members) == 0 || len(entries) == 0 {
		return nil
	}
	listLen := len(members) - 1
	for _, m := range members {
		listLen += len(m)
	}
	entryMax := max(maxBytes-listLen, maxBytes/2)
	var out []Payload
	for i := 0; i < len(entries); {
		j, size := group(entries, i, entryMax)
		for a := 0; a < len(members); {
			b, n := a+1, len(members[a])
			for b < len(members) && n+1+len(members[b])+size <= maxBytes {
				n += 1 + len(members[b])
				b++
			}
			out = append(out, packMembers(members[a:b], n, entries[i:j], size))
			a = b
		}
		i = j
	}
	return out
}

// group returns the end of the group of entries that starts at i, as Pack
// cuts it, and its size in bytes.
func group(entries [][]byte, i, maxBytes int) (end, size int) {
	j, size := i+1, len(entries[i])
	for j < len(entries) && size+len(entries[j]) <= maxBytes {
		size += len(entries[j])
		j++
	}
	return j, size
}

func packMembers(members []string, listLen int, entries [][]byte, size int) Payload {
	data := make([]byte, 0, listLen+size)
	for k, m := range members {
		if k > 0 {
			data = append(data, '\n')
		}
		data = append(data, m...)
	}
	h := nats.Header{MembersHeader: []string{strconv.Itoa(listLen)}}
	if len(entries) > 1 {
		h[Header] = []string{string(lengths(entries))}
	}
	for _, e := range entries {
		data = append(data, e...)
	}
	return Payload{Data: data, Header: h}
}

// Members is the member list of a broadcast, checked by [SplitMembers]:
// valid ids (subjects.ValidID) joined by '\n'.
type Members []byte

// All yields the members in order. Each id shares the message's storage
// (string(id) for a map lookup does not copy).
func (l Members) All() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		rest := []byte(l)
		for len(rest) > 0 {
			id := rest
			if k := bytes.IndexByte(rest, '\n'); k >= 0 {
				id, rest = rest[:k], rest[k+1:]
			} else {
				rest = nil
			}
			if !yield(id) {
				return
			}
		}
	}
}

// Len returns the number of members.
func (l Members) Len() int {
	if len(l) == 0 {
		return 0
	}
	return bytes.Count(l, []byte{'\n'}) + 1
}

// SplitMembers returns the member list and the entries of a broadcast
// made by [PackMembers]. It returns [ErrMalformed] when [MembersHeader] is
// missing or is not a length within the data, when the list has an empty
// or invalid id, or when the entries do not match [Header]. The members and
// entries share m.Data's storage.
func SplitMembers(m *nats.Msg) (Members, [][]byte, error) {
	if m.Header == nil {
		return nil, nil, ErrMalformed
	}
	v := m.Header.Get(MembersHeader)
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > len(m.Data) || strconv.Itoa(n) != v {
		return nil, nil, ErrMalformed
	}
	list := Members(m.Data[:n:n])
	if !validList(list) {
		return nil, nil, ErrMalformed
	}
	entries, err := split(m.Data[n:], m.Header.Get(Header))
	if err != nil {
		return nil, nil, err
	}
	return list, entries, nil
}

// validList reports whether l is ids of 1..subjects.MaxIDLen characters of
// [A-Za-z0-9_-] (subjects.ValidID) joined by '\n'.
func validList(l []byte) bool {
	run := 0
	for _, c := range l {
		switch {
		case c == '\n':
			if run == 0 {
				return false
			}
			run = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
		if run++; run > subjects.MaxIDLen {
			return false
		}
	}
	return run > 0
}
