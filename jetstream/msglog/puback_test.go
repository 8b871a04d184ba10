package msglog

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// refPubAck reads a publish ack as nats.go's PublishMsg does.
func refPubAck(data []byte) (pubAck, error) {
	var r struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, r.Error
	}
	if r.PubAck == nil || r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{seq: r.Sequence, dup: r.Duplicate}, nil
}

// FuzzParsePubAck checks the hand-read publish ack against nats.go's
// reading of it: the same seq and duplicate flag, or the same error.
func FuzzParsePubAck(f *testing.F) {
	for _, s := range []string{
		`{"stream":"MSGS","seq":1}`,
		`{"stream":"MSGS","seq":18446744073709551615}`,
		`{"stream":"MSGS","seq":18446744073709551616}`,
		`{"stream":"MSGS","seq":42,"duplicate": true}`,
		`{"stream":"MSGS","seq":42,"duplicate":true}`,
		`{"stream":"MSGS","domain":"hub","seq":7}`,
		`{"stream":"MSGS","seq":07}`,
		`{"stream":"M\"S","seq":3}`,
		`{"stream":"","seq":3}`,
		`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"MSGS","seq":0}`,
		`{"error":{"code":503,"description":"JetStream system temporarily unavailable"}}`,
		`{"stream":"MSGS","seq":1,"duplicate": false}`,
		`not json`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := parsePubAck(data)
		want, wantErr := refPubAck(data)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: parsePubAck %+v, %v; nats.go %+v, %v", data, got, gotErr, want, wantErr)
		}
		if gotErr != nil {
			var ga, wa *jetstream.APIError
			if errors.As(gotErr, &ga) != errors.As(wantErr, &wa) || (ga != nil && *ga != *wa) ||
				errors.Is(gotErr, jetstream.ErrInvalidJSAck) != errors.Is(wantErr, jetstream.ErrInvalidJSAck) {
				t.Fatalf("%q: parsePubAck error %v, nats.go %v", data, gotErr, wantErr)
			}
			return
		}
		if got != want {
			t.Fatalf("%q: parsePubAck %+v, nats.go %+v", data, got, want)
		}
	})
}
