package delivery

import (
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Signal kinds, the values of [SignalHeader].
const (
	// SignalTyping is a typing push, published by an edge once per other
	// member.
	SignalTyping = "typing"
	// SignalConv is a conv push (a change of a conversation: created,
	// members, renamed), published by the conversations service once per
	// member, or once for all edges ([PackSignal]) for a large group.
	SignalConv = "conv"
	// SignalReaction is a reaction push, published by an edge once per
	// member (the reacting user included), in conversations of at most
	// the edge's typing bound of members.
	SignalReaction = "reaction"
)

// ExceptHeader gives the length in bytes of the list of users that starts
// the data of a signal broadcast ([PackSignal]): users who are members but
// must not get the frame (they got one of their own). 0 means none.
const ExceptHeader = "Natter-Except"

// PackSignal returns the broadcast (subjects.DeliverGroups) carrying frame,
// a server frame of signal kind, to every member of conv but except: the
// headers [SignalHeader] and [ConvHeader] name them, the data is except
// (ids joined by '\n', its length in [ExceptHeader]) followed by the frame.
// Each edge looks the members up in its member cache, as for a broadcast
// of log entries addressed by conversation.
func PackSignal(conv, kind string, frame []byte, except []string) Payload {
	n := 0
	for i, u := range except {
		if i > 0 {
			n++
		}
		n += len(u)
	}
	data := make([]byte, 0, n+len(frame))
	for i, u := range except {
		if i > 0 {
			data = append(data, '\n')
		}
		data = append(data, u...)
	}
	data = append(data, frame...)
	return Payload{Data: data, Header: nats.Header{
		SignalHeader: []string{kind},
		ConvHeader:   []string{conv},
		ExceptHeader: []string{strconv.Itoa(n)},
	}}
}

// SplitSignal returns the conversation, the kind, the users left out and
// the frame of a broadcast made by [PackSignal]; conv is "" when m has no
// [SignalHeader] (a broadcast of log entries). It returns [ErrMalformed]
// for a missing or invalid conversation id, an [ExceptHeader] that is not a
// length within the data, an invalid id in the list, or an empty frame.
// The list and the frame share m.Data's storage.
func SplitSignal(m *nats.Msg) (conv, kind string, except Members, frame []byte, err error) {
	if m.Header == nil || m.Header.Get(SignalHeader) == "" {
		return "", "", nil, nil, nil
	}
	kind, conv = m.Header.Get(SignalHeader), m.Header.Get(ConvHeader)
	if subjects.ValidID(conv) != nil {
		return "", "", nil, nil, ErrMalformed
	}
	v := m.Header.Get(ExceptHeader)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n >= len(m.Data) || strconv.Itoa(n) != v {
		return "", "", nil, nil, ErrMalformed
	}
	except = Members(m.Data[:n:n])
	if n > 0 && !validList(except) {
		return "", "", nil, nil, ErrMalformed
	}
	return conv, kind, except, m.Data[n:], nil
}
