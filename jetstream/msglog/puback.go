package msglog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The append's publish, as jetstream.JetStream.PublishMsg does it (a
// request, retried twice 250 ms apart on no responders), with the ack read
// by hand: nats.go decodes every ack with encoding/json, which was a third
// of the append's CPU (and grew the sending goroutine's stack) for a
// document nats-server writes in one of two layouts.

// Retries of a publish that found no responders: nats.go's defaults.
const (
	pubRetryWait     = 250 * time.Millisecond
	pubRetryAttempts = 2
)

// pubAck is what the append needs of a JetStream publish ack.
type pubAck struct {
	seq uint64
	dup bool
}

// publishMsg publishes m and waits for its ack. Its errors are those of
// PublishMsg: jetstream.ErrNoStreamResponse, an *jetstream.APIError
// (wrapped) for an error the stream answered, jetstream.ErrInvalidJSAck, or
// the request's.
func (l *Log) publishMsg(ctx context.Context, m *nats.Msg) (pubAck, error) {
	resp, err := l.nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < pubRetryAttempts; r++ {
		t := time.NewTimer(pubRetryWait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		resp, err = l.nc.RequestMsgWithContext(ctx, m)
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return pubAck{}, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return pubAck{}, err
	}
	return parsePubAck(resp.Data)
}

// parsePubAck reads a publish ack: {"stream":"S","seq":N} or
// {"stream":"S","seq":N,"duplicate": true} (nats-server's layouts) by hand,
// anything else with encoding/json (FuzzParsePubAck checks both agree).
func parsePubAck(data []byte) (pubAck, error) {
	if a, ok := scanPubAck(data); ok {
		return a, nil
	}
	var r struct {
		Error     *jetstream.APIError `json:"error,omitempty"`
		Stream    string              `json:"stream"`
		Sequence  uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate,omitempty"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return pubAck{}, fmt.Errorf("nats: %w", r.Error)
	}
	if r.Stream == "" {
		return pubAck{}, jetstream.ErrInvalidJSAck
	}
	return pubAck{seq: r.Sequence, dup: r.Duplicate}, nil
}

// scanPubAck reads the two layouts nats-server writes for a stream without
// a domain; ok is false for anything else.
func scanPubAck(data []byte) (a pubAck, ok bool) {
	s := string(data)
	const streamKey, seqKey = `{"stream":"`, `","seq":`
	if !strings.HasPrefix(s, streamKey) {
		return a, false
	}
	s = s[len(streamKey):]
	i := strings.IndexByte(s, '"')
	if i <= 0 || strings.IndexByte(s[:i], '\\') >= 0 || !strings.HasPrefix(s[i:], seqKey) {
		return a, false
	}
	s = s[i+len(seqKey):]
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || (n > 1 && s[0] == '0') {
		return a, false
	}
	seq, err := strconv.ParseUint(s[:n], 10, 64)
	if err != nil {
		return a, false
	}
	switch s[n:] {
	case `}`:
		return pubAck{seq: seq}, true
	case `,"duplicate": true}`, `,"duplicate":true}`:
		return pubAck{seq: seq, dup: true}, true
	}
	return a, false
}
