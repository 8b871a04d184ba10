package delivery

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/subjects"
)

// SignalRead is the [SignalHeader] value of a read signal: a member's read
// cursor moved. Its data is a [Read] as JSON, which the edge turns into a
// read push on the receiving user's sockets.
const SignalRead = "read"

// Read is the body of a read signal: User has read Conv up to Seq.
type Read struct {
	Conv string `json:"conv"`
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// ReadPayload returns the payload of r's signal, the same for every
// recipient's subject.
func ReadPayload(r Read) (Payload, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return Payload{}, fmt.Errorf("delivery: encode read: %w", err)
	}
	return Payload{Data: data, Header: nats.Header{SignalHeader: []string{SignalRead}}}, nil
}

// ParseRead decodes the data of a read signal; [ErrMalformed] when it is
// not a [Read] with valid ids and a seq >= 1.
func ParseRead(data []byte) (Read, error) {
	var r Read
	if err := json.Unmarshal(data, &r); err != nil {
		return Read{}, fmt.Errorf("%w: read signal: %v", ErrMalformed, err)
	}
	if subjects.ValidID(r.Conv) != nil || subjects.ValidID(r.User) != nil || r.Seq == 0 {
		return Read{}, fmt.Errorf("%w: read signal needs conv, user and seq >= 1", ErrMalformed)
	}
	return r, nil
}
