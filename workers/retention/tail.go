package retention

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// tailBatch is how many entries one fetch of the tail asks for.
const tailBatch = 1024

// tail reads the headers of the MSGS entries after stream sequence from
// (an ordered consumer, headers only: no payload crosses the wire) up to
// the stream's last sequence when it starts, and returns the newest seq
// seen per conversation, the last stream sequence read and how many
// entries it looked at.
func (s *Sweeper) tail(ctx context.Context, from uint64) (seen map[string]uint64, last uint64, n int, err error) {
	info, err := s.msgs.Info(ctx)
	if err != nil {
		return nil, from, 0, fmt.Errorf("retention: tail: %w", err)
	}
	last = info.State.LastSeq
	if from > last {
		// The stream is not the one the sweeps read (restored from a
		// backup, recreated): from its start again.
		from = 0
	}
	if last <= from || info.State.Msgs == 0 {
		return nil, max(from, last), 0, nil
	}
	start := max(from+1, info.State.FirstSeq)
	cons, err := s.js.OrderedConsumer(ctx, subjects.StreamMsgs, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, HeadersOnly: true})
	if err != nil {
		return nil, from, 0, fmt.Errorf("retention: tail: %w", err)
	}
	seen = map[string]uint64{}
	for {
		batch, err := cons.Fetch(tailBatch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, from, n, fmt.Errorf("retention: tail: %w", err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, from, n, fmt.Errorf("retention: tail: %w", err)
			}
			if md.Sequence.Stream >= last {
				done = true
			}
			conv := subjects.ConvFromMsg(m.Subject())
			seq, perr := strconv.ParseUint(m.Headers().Get(msglog.HeaderSeq), 10, 64)
			if conv == "" || perr != nil {
				continue // not a log entry: nothing to keep track of
			}
			n++
			seen[conv] = max(seen[conv], seq)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, from, n, fmt.Errorf("retention: tail: %w", err)
		}
		if done || got == 0 {
			// got == 0: the rest up to last was removed meanwhile.
			return seen, last, n, nil
		}
	}
}
