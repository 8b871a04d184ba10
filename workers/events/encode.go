package events

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/jsonstr"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// MessageMsg returns Msg(MessageEvent(m)) without reflection: the envelope
// is written by hand around the entry as msglog writes it, byte for byte
// what encoding/json writes for the [natter.Event] (TestMessageMsg and
// FuzzMessageMsg check). The events role builds one per log entry, so this
// is most of its CPU above NATS.
func MessageMsg(m *natter.Message) (*nats.Msg, error) {
	if subjects.ValidID(m.Conv) != nil {
		return nil, fmt.Errorf("events: %w: message without a valid conv", ErrInvalid)
	}
	kind := KindOf(*m)
	id := idMessage + m.ID
	b := make([]byte, 0, msglog.JSONSize(m)+len(m.ID)*2+len(m.Conv)+len(m.From)+96)
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, id, true)
	b = append(b, `,"kind":`...)
	b = jsonstr.Append(b, kind, true)
	b = append(b, `,"conv":`...)
	b = jsonstr.Append(b, m.Conv, true)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	b = append(b, `,"actor":`...)
	b = jsonstr.Append(b, m.From, true)
	b = append(b, `,"data":`...)
	b = msglog.AppendJSON(b, m)
	b = append(b, '}')
	pm := nats.NewMsg(subjects.Event(kind, m.Conv))
	pm.Data = b
	pm.Header.Set(jetstream.MsgIDHeader, id)
	return pm, nil
}
