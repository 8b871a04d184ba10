package runner

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Headers of a dead-lettered copy, on top of the original's headers.
const (
	// HeaderDLQReason says why the message was dead-lettered.
	HeaderDLQReason = "Natter-DLQ-Reason"
	// HeaderDLQStream is the stream the message came from.
	HeaderDLQStream = "Natter-DLQ-Stream"
	// HeaderDLQSeq is its stream sequence there.
	HeaderDLQSeq = "Natter-DLQ-Seq"
	// HeaderDLQSubject is its original subject.
	HeaderDLQSubject = "Natter-DLQ-Subject"
	// HeaderDLQDeliveries is how often it had been delivered.
	HeaderDLQDeliveries = "Natter-DLQ-Deliveries"
	// HeaderDLQMsgID keeps the original Nats-Msg-Id (the natter message id
	// on MSGS). Original Nats-* headers are not copied: they would steer the
	// publish to the DLQ stream (dedup, expected sequences, TTL, rollup).
	HeaderDLQMsgID = "Natter-DLQ-Msg-Id"
)

const (
	// dlqTimeout bounds the dead-letter publish of one message.
	dlqTimeout = 5 * time.Second
	// maxReason bounds a reason in a header and in TermWithReason.
	maxReason = 1024
)

// settle acknowledges m according to res.
func (r *Runner) settle(ctx context.Context, m jetstream.Msg, res Result) {
	switch res.Outcome {
	case Ack:
		r.c.outcome(labelAck)
		if err := m.Ack(); err != nil {
			r.log.Warn("ack failed; the message will be redelivered", "subject", m.Subject(), "err", err)
			r.c.failed("ack: " + err.Error())
		}
	case Poison:
		reason := cleanReason(res.Reason, "poison")
		r.log.Warn("poison message", "subject", m.Subject(), "reason", reason)
		r.deadLetter(ctx, m, reason, labelPoison)
	default:
		if res.Outcome != Retry {
			r.log.Error("handler returned an invalid outcome; retrying", "subject", m.Subject(), "outcome", int(res.Outcome))
			res.Reason = fmt.Sprintf("handler bug: invalid outcome %d", int(res.Outcome))
		}
		r.retry(ctx, m, res)
	}
}

func (r *Runner) retry(ctx context.Context, m jetstream.Msg, res Result) {
	reason := cleanReason(res.Reason, "retry")
	maxDeliver := r.maxDeliver.Load()
	if md, err := m.Metadata(); err == nil && maxDeliver > 0 && md.NumDelivered >= uint64(maxDeliver) {
		r.log.Warn("retries exhausted", "subject", m.Subject(), "deliveries", md.NumDelivered, "reason", reason)
		r.deadLetter(ctx, m, fmt.Sprintf("max deliveries (%d) reached: %s", maxDeliver, reason), labelExhausted)
		return
	}
	r.nak(m, res.Delay, reason)
}

func (r *Runner) nak(m jetstream.Msg, delay time.Duration, reason string) {
	if delay <= 0 {
		delay = r.cfg.RetryDelay
	}
	r.c.outcome(labelRetry)
	r.c.failed("retry: " + reason)
	r.log.Debug("retry", "subject", m.Subject(), "delay", delay, "reason", reason)
	if err := m.NakWithDelay(delay); err != nil {
		r.log.Warn("nak failed; the message will be redelivered after AckWait", "subject", m.Subject(), "err", err)
		r.c.failed("nak: " + err.Error())
	}
}

// deadLetter publishes a copy of m to the role's dead-letter subject and then
// terminates m. If the publish fails, m is retried instead, so it is never
// terminated without a copy.
func (r *Runner) deadLetter(ctx context.Context, m jetstream.Msg, reason, label string) {
	reason = cleanReason(reason, label)
	dl := nats.NewMsg(subjects.DLQ(r.cfg.Role))
	dl.Data = m.Data()
	for k, v := range m.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			if strings.EqualFold(k, jetstream.MsgIDHeader) && len(v) > 0 {
				dl.Header.Set(HeaderDLQMsgID, v[0])
			}
			continue
		}
		dl.Header[k] = append([]string(nil), v...)
	}
	dl.Header.Set(HeaderDLQReason, reason)
	dl.Header.Set(HeaderDLQSubject, m.Subject())
	dl.Header.Set(HeaderDLQStream, r.cfg.Stream)
	if md, err := m.Metadata(); err == nil {
		dl.Header.Set(HeaderDLQStream, md.Stream)
		dl.Header.Set(HeaderDLQSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		dl.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(md.NumDelivered, 10))
		// A retry after a lost Term must not dead-letter twice; the role is
		// part of the id because every role dead-letters into one stream.
		dl.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq.%s.%s.%d", r.cfg.Role, md.Stream, md.Sequence.Stream))
	}

	pctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, dl); err != nil {
		r.log.Error("dead-letter publish failed; retrying the message", "subject", m.Subject(), "dlq", dl.Subject, "err", err)
		r.c.failed("dead-letter publish: " + err.Error())
		r.nak(m, 0, "dead-letter publish failed: "+err.Error())
		return
	}
	r.c.outcome(label)
	r.c.failed(label + ": " + reason)
	if err := m.TermWithReason(reason); err != nil {
		r.log.Warn("term failed; the message may be dead-lettered again", "subject", m.Subject(), "err", err)
		r.c.failed("term: " + err.Error())
	}
}

// cleanReason makes s safe for a header and the +TERM payload: one line,
// at most maxReason bytes, never empty.
func cleanReason(s, fallback string) string {
	s = strings.TrimSpace(strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' || c == 0 {
			return ' '
		}
		return c
	}, s))
	if s == "" {
		s = fallback
	}
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "")
	}
	return s
}
