package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Publisher publishes events to the EVENTS stream, which must exist
// (streams.Apply creates it). It is safe for concurrent use.
type Publisher struct {
	js       jetstream.JetStream
	attempts int
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, attempts: 3}
}

// Msg returns the NATS message of ev: subject subjects.Event(kind, conv),
// header Nats-Msg-Id = ev.ID, the envelope JSON as payload.
func Msg(ev natter.Event) (*nats.Msg, error) {
	if ev.ID == "" || ev.Kind == "" || subjects.ValidID(ev.Conv) != nil {
		return nil, fmt.Errorf("events: %w: event without id, kind or valid conv", ErrInvalid)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", ev.ID, err)
	}
	m := nats.NewMsg(subjects.Event(ev.Kind, ev.Conv))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	return m, nil
}

// Publish stores ev once. A publish whose ack does not come is tried again
// (up to three times, within ctx) with the same Nats-Msg-Id, so the stream
// keeps one copy. It returns nil for a duplicate: the event is stored.
func (p *Publisher) Publish(ctx context.Context, ev natter.Event) error {
	m, err := Msg(ev)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout(ctx, p.attempts-attempt+1))
		_, err = p.js.PublishMsg(actx, m, jetstream.WithExpectStream(subjects.StreamEvents))
		cancel()
		if err == nil {
			return nil
		}
		if attempt >= p.attempts || ctx.Err() != nil || !retryable(err) {
			return fmt.Errorf("events: publish %s: %w", ev.ID, err)
		}
		t := time.NewTimer(time.Duration(attempt) * 50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("events: publish %s: %w", ev.ID, errors.Join(err, ctx.Err()))
		}
	}
}

// attemptTimeout shares what is left of ctx among the attempts left, so a
// lost ack leaves time to try again; 2s each without a deadline.
func attemptTimeout(ctx context.Context, left int) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return 2 * time.Second
	}
	return max(time.Until(d)/time.Duration(left), time.Millisecond)
}

// retryable reports whether a failed publish may succeed when tried again:
// a timeout (the ack may be lost) or no responders (a stream leader moving).
func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}
