// Package delivery is the format of a message on a user's core-NATS
// delivery subject im.dlv.<user> (subjects.Deliver): one log entry, as the
// MSGS stream holds it, or several entries of one conversation in log order
// in one NATS message. The fan-out role publishes a batch per member instead
// of a message per member and entry, so a group's burst costs one publish per
// member, and the edge queues the batch's push frames on a socket at once,
// where they go out in one write.
//
// A batch carries the header [Header] with the entries' lengths in bytes,
// comma-separated, and the entries concatenated as the data. A message
// without the header is one entry (what internal tools and older fan-out
// workers publish).
//
// A broadcast, on subjects.DeliverGroups, carries a large group's batch to
// every edge at once: its data starts with the member list (ids joined by
// '\n'), whose length the header [MembersHeader] gives, and the entries
// follow as in a batch ([PackMembers], [SplitMembers]). One message per
// edge replaces one per member; each edge queues the frames on the sessions
// of the listed members it holds.
package delivery

import (
	"errors"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Header names the entries' lengths in a batch.
const Header = "Natter-Batch"

// SignalHeader marks an ephemeral signal on a user's delivery subject (its
// value names the kind, "typing"): the data is a server frame the edge
// queues on the user's sockets as it is, never a log entry.
const SignalHeader = "Natter-Signal"

// ErrMalformed is returned by [Split] for a batch whose header does not
// describe its data.
var ErrMalformed = errors.New("delivery: malformed batch")

// Payload is the data and header of one delivery message, the same for
// every member's subject.
type Payload struct {
	Data   []byte
	Header nats.Header // nil for a single entry
}

// Msg returns the message carrying p to subject. Messages of one payload
// share its data and header; neither may be changed.
func (p Payload) Msg(subject string) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: p.Data, Header: p.Header}
}

// Pack returns the payloads carrying entries, in order, each with at most
// maxBytes of data unless one entry alone is larger. A payload of one entry
// has no header.
func Pack(entries [][]byte, maxBytes int) []Payload {
	var out []Payload
	for i := 0; i < len(entries); {
		j, size := group(entries, i, maxBytes)
		out = append(out, pack(entries[i:j], size))
		i = j
	}
	return out
}

func pack(entries [][]byte, size int) Payload {
	if len(entries) == 1 {
		return Payload{Data: entries[0]}
	}
	data := make([]byte, 0, size)
	for _, e := range entries {
		data = append(data, e...)
	}
	return Payload{Data: data, Header: nats.Header{Header: []string{string(lengths(entries))}}}
}

// lengths returns the value of [Header] for entries.
func lengths(entries [][]byte) []byte {
	lens := make([]byte, 0, 5*len(entries))
	for i, e := range entries {
		if i > 0 {
			lens = append(lens, ',')
		}
		lens = strconv.AppendInt(lens, int64(len(e)), 10)
	}
	return lens
}

// Split returns the entries of a delivery message, in order: the data
// itself when there is no batch header. The entries share data's storage.
func Split(m *nats.Msg) ([][]byte, error) {
	v := ""
	if m.Header != nil {
		v = m.Header.Get(Header)
	}
	return split(m.Data, v)
}

// split returns the entries of data as lens (the value of [Header]) cuts
// it: data itself when lens is empty.
func split(data []byte, lens string) ([][]byte, error) {
	if lens == "" {
		return [][]byte{data}, nil
	}
	out := make([][]byte, 0, strings.Count(lens, ",")+1)
	for lens != "" {
		s := lens
		if k := strings.IndexByte(lens, ','); k >= 0 {
			s, lens = lens[:k], lens[k+1:]
		} else {
			lens = ""
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > len(data) {
			return nil, ErrMalformed
		}
		out = append(out, data[:n:n])
		data = data[n:]
	}
	if len(data) != 0 {
		return nil, ErrMalformed
	}
	return out, nil
}
