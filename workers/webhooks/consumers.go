package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// ackMargin is added to an endpoint's Timeout to make its consumer's
// AckWait: an attempt in progress is never redelivered to another replica.
const ackMargin = 30 * time.Second

// Consumer metadata keys, so operators can tell webhook consumers apart.
const (
	metaRole     = "natter_role"
	metaEndpoint = "natter_webhook_endpoint"
)

// ConsumerConfig is the durable consumer of endpoint e on the events stream:
// explicit acks, one filter per selected kind other than the message kinds
// (im.evt.<kind>.>, or im.evt.> for every kind), MaxAckPending = MaxInFlight, AckWait = Timeout
// plus a margin, and no MaxDeliver: the handler counts attempts itself and
// dead-letters after MaxAttempts, so an event whose last attempt dies with
// its worker is still dead-lettered (with a server-side MaxDeliver it would
// silently stop being delivered). A new consumer starts with events
// published after its creation (DeliverNew): adding an endpoint does not
// replay the stream's history to it.
func ConsumerConfig(e Endpoint) jetstream.ConsumerConfig {
	e = e.withDefaults()
	cc := jetstream.ConsumerConfig{
		Durable:       ConsumerName(e.Name),
		Description:   "natter webhook endpoint " + e.Name,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.Timeout + ackMargin,
		MaxDeliver:    -1,
		MaxAckPending: e.MaxInFlight,
		Metadata:      map[string]string{metaRole: "webhook", metaEndpoint: e.Name},
	}
	switch filters := filterSubjects(e.Kinds); len(filters) {
	case 1:
		cc.FilterSubject = filters[0]
	default:
		cc.FilterSubjects = filters
	}
	return cc
}

// MessageConsumerConfig is the durable consumer of endpoint e on the log
// (MSGS, subjects.MsgsAll), for the message kinds: message events are the
// log's entries (docs/events.md), which the deliverer turns into the event
// envelope. The same name and settings as [ConsumerConfig].
func MessageConsumerConfig(e Endpoint) jetstream.ConsumerConfig {
	cc := ConsumerConfig(e)
	cc.FilterSubject, cc.FilterSubjects = subjects.MsgsAll, nil
	return cc
}

// wants reports whether e selects a kind of the events stream (one other
// than the message kinds) and whether it selects a message kind.
func wants(e Endpoint) (events, messages bool) {
	if len(e.Kinds) == 0 {
		return true, true
	}
	for _, k := range e.Kinds {
		if isMessageKind(k) {
			messages = true
		} else {
			events = true
		}
	}
	return events, messages
}

func filterSubjects(kinds []string) []string {
	if len(kinds) == 0 {
		return []string{EventsAll}
	}
	var fs []string
	for _, k := range kinds {
		if !isMessageKind(k) {
			fs = append(fs, EventsOfKind(k))
		}
	}
	slices.Sort(fs)
	return fs
}

// EnsureConsumers creates or updates the durable consumers of every
// endpoint, on stream (normally [StreamEvents]) for its kinds other than
// the message kinds and on MSGS for those, and returns what changed: a second
// call with the same endpoints changes nothing. An existing consumer keeps
// its position, so restarts resume where the endpoint was. Consumers of
// endpoints no longer configured are left alone (another replica may still
// run an older configuration); remove them with
// `nats consumer rm EVENTS WEBHOOK_<NAME>`.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, stream string, eps []Endpoint) ([]streams.Change, error) {
	if err := ValidateEndpoints(eps); err != nil {
		return nil, err
	}
	var changes []streams.Change
	for _, e := range eps {
		ev, msgs := wants(e)
		var want []consumerOn
		if ev {
			want = append(want, consumerOn{stream, ConsumerConfig(e)})
		}
		if msgs {
			want = append(want, consumerOn{subjects.StreamMsgs, MessageConsumerConfig(e)})
		}
		for _, w := range want {
			ch, err := ensureConsumer(ctx, js, w.stream, w.cc)
			if err != nil {
				return changes, err
			}
			if ch != nil {
				changes = append(changes, *ch)
			}
		}
	}
	return changes, nil
}

type consumerOn struct {
	stream string
	cc     jetstream.ConsumerConfig
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (*streams.Change, error) {
	name := stream + "/" + want.Durable
	c, err := js.Consumer(ctx, stream, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if _, err := js.CreateConsumer(ctx, stream, want); err != nil {
			return nil, fmt.Errorf("webhooks: create consumer %s: %w", name, err)
		}
		return &streams.Change{Kind: "consumer", Name: name, Action: "created"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: look up consumer %s: %w", name, err)
	}
	have := c.CachedInfo().Config
	if consumerEqual(have, want) {
		return nil, nil
	}
	// The start position cannot change; keep the existing one.
	want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
	if _, err := js.UpdateConsumer(ctx, stream, want); err != nil {
		return nil, fmt.Errorf("webhooks: update consumer %s: %w", name, err)
	}
	return &streams.Change{Kind: "consumer", Name: name, Action: "updated"}, nil
}

// consumerEqual compares the fields ConsumerConfig sets; the server adds
// metadata of its own and may store one filter in either field.
func consumerEqual(have, want jetstream.ConsumerConfig) bool {
	filters := func(c jetstream.ConsumerConfig) []string {
		fs := slices.Clone(c.FilterSubjects)
		if c.FilterSubject != "" {
			fs = append(fs, c.FilterSubject)
		}
		slices.Sort(fs)
		return fs
	}
	for k, v := range want.Metadata {
		if have.Metadata[k] != v {
			return false
		}
	}
	return have.Description == want.Description &&
		have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait &&
		have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending &&
		slices.Equal(filters(have), filters(want))
}
