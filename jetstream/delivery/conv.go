package delivery

import (
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

// ConvHeader names the conversation of a broadcast that carries no member
// list (subjects.DeliverGroups): a group too large to list in every message.
// Each edge looks the conversation's members up in its member cache and
// queues the entries on the sessions of the members it holds, so the cost
// of a message follows the members online, not the group's size.
const ConvHeader = "Natter-Conv"

// PackConv returns the broadcast payloads carrying entries, in order, to the
// members of conv: [Pack]'s payloads with [ConvHeader] set.
func PackConv(conv string, entries [][]byte, maxBytes int) []Payload {
	out := Pack(entries, maxBytes)
	for i := range out {
		h := nats.Header{ConvHeader: []string{conv}}
		for k, v := range out[i].Header {
			h[k] = v
		}
		out[i].Header = h
	}
	return out
}

// SplitConv returns the conversation and the entries of a broadcast made
// by [PackConv]; conv is "" when m has no [ConvHeader] (a listed broadcast:
// [SplitMembers]). It returns [ErrMalformed] for an invalid conversation id
// or entries that do not match [Header].
func SplitConv(m *nats.Msg) (conv string, entries [][]byte, err error) {
	if m.Header == nil {
		return "", nil, nil
	}
	conv = m.Header.Get(ConvHeader)
	if conv == "" {
		return "", nil, nil
	}
	if subjects.ValidID(conv) != nil {
		return "", nil, ErrMalformed
	}
	entries, err = split(m.Data, m.Header.Get(Header))
	if err != nil {
		return "", nil, err
	}
	return conv, entries, nil
}
