package msglog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/tracing"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Send is one message to append.
type Send struct {
	// Conv is the conversation id ([subjects.ValidID]).
	Conv string
	// From is the sending user, from the token ([subjects.ValidID]).
	From string
	// Cmid is the client message id ([subjects.ValidID]); retries of one
	// send must reuse it.
	Cmid string
	// Type is the application-defined kind. Empty means [DefaultType].
	Type string
	// Body is the message text.
	Body string
	// Ref is the message an edit or delete entry applies to
	// (natter.Message.Ref); empty for other messages.
	Ref string
	// Attachments are the files the message carries, checked by the caller
	// (the edge checks that the sender uploaded them).
	Attachments []natter.Attachment
	// ReplyTo and Thread are natter.Message's, checked by the caller (the
	// edge checks that they name a message of Conv).
	ReplyTo, Thread string
	// Mentions are natter.Message's, checked by the caller (the edge checks
	// that they are members, and who mentions @all).
	Mentions []string
	// FirstAttempt says the caller knows this is the first attempt to send
	// Cmid: a cmid it made itself and has not sent before. Append may then
	// skip the check for an earlier copy (the hot tier above the persist
	// worker's ack floor, then the archive: a request to the conversations
	// service) that answers retries from before the stream's dedup window: a
	// first attempt has no earlier copy, and a copy stored inside the window
	// is JetStream's duplicate. False (the zero value, for callers that
	// cannot tell) always checks. A caller that sets it on a resend after the
	// dedup window stores the message twice.
	FirstAttempt bool
}

func (s Send) validate() error {
	for _, f := range [...]struct{ name, v string }{{"conv", s.Conv}, {"from", s.From}, {"cmid", s.Cmid}} {
		if err := subjects.ValidID(f.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, f.name, err)
		}
	}
	return nil
}

// Append stores s in the log and returns its ack once it is durable. A retry
// of an accepted send (same Conv, From and Cmid) returns the original ack
// with Dup set: from JetStream's dedup window, the hot tier or the archive
// ([Log.sent]).
//
// An attempt that gets no answer within Config.AttemptTimeout, or that no
// server answers (the stream has no leader), is retried with the same
// message id until ctx ends (a ctx without a deadline gets the JetStream
// context's default timeout, 5s unless set).
//
// Errors: [ErrInvalid] for bad fields, [ErrConflict] when other writers kept
// winning the compare-and-set race, else the NATS error (of the last
// attempt, or ctx's). After an error the
// send may or may not have been stored; retrying it is always safe.
func (l *Log) Append(ctx context.Context, s Send) (natter.Ack, error) {
	if err := s.validate(); err != nil {
		return natter.Ack{}, fmt.Errorf("msglog: append: %w", err)
	}
	if s.Type == "" {
		s.Type = DefaultType
	}
	id := MessageID(s.Conv, s.From, s.Cmid)
	cl, err := l.locks.lock(ctx, s.Conv)
	if err != nil {
		return natter.Ack{}, fmt.Errorf("msglog: append %s: %w", id, err)
	}
	defer l.locks.unlock(s.Conv, cl)
	if _, ok := ctx.Deadline(); !ok {
		// Stalled attempts are retried until ctx ends: without a deadline,
		// the JetStream context's default timeout bounds them.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}

	conflicts, stalls := 0, 0
	for {
		// The first retry after a conflict checks once more, up to the
		// head it reads afresh (the first check may have stopped at a
		// stale cached head, and a standalone stream checks the expected
		// sequence before the message id). Later conflict retries do not:
		// a refused attempt stored nothing, and a copy stored since is
		// younger than the dedup window, which answers it. After a stall
		// the attempt may have been stored: every retry then checks.
		ack, err := l.try(ctx, s, id, conflicts == 1 || stalls > 0)
		switch {
		case err == nil:
			return ack, nil
		case isWrongLastSeq(err):
			// Another writer appended first, or this is a retry of a
			// stored send and our head is stale: re-read the head and
			// check again.
			l.heads.drop(s.Conv)
			if conflicts >= l.cfg.MaxRetries {
				return natter.Ack{}, fmt.Errorf("msglog: append %s: %w (%d retries)", id, ErrConflict, conflicts)
			}
			l.log.Debug("append conflict", "conv", s.Conv, "id", id, "attempt", conflicts+1)
			if err := backoff(ctx, conflicts); err != nil {
				return natter.Ack{}, fmt.Errorf("msglog: append %s: %w", id, err)
			}
			conflicts++
		case ctx.Err() == nil && stalled(err):
			// The attempt got no answer in AttemptTimeout (a stream leader
			// that stopped answering) or no server answered at all (no
			// leader: an election is under way). The same message id goes
			// again, to whichever server leads by then: JetStream's dedup
			// or the retry check answers it if the first one was stored.
			stalls++
			l.stats.stalls.Add(1)
			l.log.Debug("append stalled; retrying", "conv", s.Conv, "id", id, "attempt", stalls, "err", err)
			if err := stallWait(ctx, err); err != nil {
				return natter.Ack{}, fmt.Errorf("msglog: append %s: %w", id, err)
			}
		default:
			return natter.Ack{}, fmt.Errorf("msglog: append %s: %w", id, err)
		}
	}
}

// try is one attempt of an append, bounded by Config.AttemptTimeout: the
// head read (when it is not cached), the check for an earlier copy
// ([Log.sent]; skipped for a first attempt of a first send whose head is
// cached) and the publish. retry says an earlier attempt of this append
// failed.
func (l *Log) try(ctx context.Context, s Send, id string, retry bool) (natter.Ack, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
	defer cancel()
	h, cached := l.heads.get(s.Conv)
	if !cached {
		var err error
		if h, err = l.readHead(ctx, s.Conv); err != nil {
			return natter.Ack{}, fmt.Errorf("head: %w", err)
		}
		l.heads.put(s.Conv, h)
	}
	// The check is skipped for a first attempt whose head is cached (a
	// cmid never sent before cannot have a copy) and for conflict retries
	// after the first (see Append).
	if !s.FirstAttempt || !cached || retry {
		ack, ok, err := l.sent(ctx, s.Conv, id, h)
		if err != nil {
			return natter.Ack{}, fmt.Errorf("retry check: %w", err)
		}
		if ok {
			ack.Dup = true
			return ack, nil
		}
	}
	return l.publish(ctx, s, id, h)
}

// stalled reports an attempt that got no answer: its timeout, or no
// responders (nats.go's own publish retries included).
// A JetStream API error with status 503 (the cluster or the stream has no
// leader yet: "JetStream system temporarily unavailable") is one too: the
// retry check's stream and consumer info requests get it during an
// election.
func stalled(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		(errors.As(err, &ae) && ae.Code == 503)
}

// stallWait waits before the retry of a stalled attempt: not at all after a
// timeout (the attempt waited already), ~100-300 ms after no responders,
// which come back at once while no server leads the stream.
func stallWait(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return ctx.Err()
	}
	t := time.NewTimer(100*time.Millisecond + rand.N(200*time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish appends the message after h with compare-and-set on h.
func (l *Log) publish(ctx context.Context, s Send, id string, h head) (natter.Ack, error) {
	seq, blk, pblk := h.next()
	prev := nextWindow(h.prev, h.stream)
	msg := natter.Message{
		ID: id, Conv: s.Conv, Seq: seq, From: s.From, Cmid: s.Cmid,
		Type: s.Type, Body: s.Body, Ref: s.Ref, ReplyTo: s.ReplyTo, Thread: s.Thread, Mentions: s.Mentions, Attachments: s.Attachments, TS: l.cfg.Now().UnixMilli(),
	}
	// The header keys are the canonical ones nats.Header.Set would store;
	// one backing array for the six values.
	vals := [...]string{id, strconv.FormatUint(h.stream, 10), strconv.FormatUint(seq, 10),
		strconv.FormatUint(blk, 10), strconv.FormatUint(pblk, 10), prev}
	hv := vals[:]
	// The header map and the payload's buffer are reused across appends:
	// nats.go copies both into its write buffer before the request returns.
	pb := getPubBuf()
	defer putPubBuf(pb)
	pb.msg.Subject = subjects.Msg(s.Conv)
	pb.msg.Data = appendMessage(slices.Grow(pb.msg.Data[:0], messageSize(&msg)), &msg)
	hdr := pb.msg.Header
	hdr[jetstream.MsgIDHeader] = hv[0:1:1]
	hdr[jetstream.ExpectedLastSubjSeqHeader] = hv[1:2:2]
	hdr[HeaderSeq] = hv[2:3:3]
	hdr[HeaderBlk] = hv[3:4:4]
	hdr[HeaderPBlk] = hv[4:5:5]
	if prev != "" {
		hdr[HeaderPrev] = hv[5:6:6]
	}
	tracing.Inject(ctx, hdr) // a sampled send's trace context and edge
	pa, err := l.publishMsg(ctx, &pb.msg)
	if err != nil {
		return natter.Ack{}, err
	}
	if pa.dup {
		// Stored before by an earlier attempt of this send, inside the dedup
		// window (a first attempt, or a copy the check did not see yet: a
		// concurrent attempt on another edge). Leave the cached head
		// alone: if it is stale (a clustered stream checks the message id
		// before the expected sequence), the next append's
		// compare-and-set fails and re-reads it.
		return l.original(ctx, s.Conv, id, pa.seq)
	}
	if blk == 0 {
		blk = pa.seq
	}
	l.heads.put(s.Conv, head{stream: pa.seq, seq: seq, blk: blk, pblk: pblk, prev: prev})
	return ackOf(msg), nil
}

// original answers a duplicate ack: it reads the stored entry at sseq and
// returns its ack with Dup set.
func (l *Log) original(ctx context.Context, conv, id string, sseq uint64) (natter.Ack, error) {
	raw, err := l.stream.GetMsg(ctx, sseq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Trimmed already, so archived (or lost with the hot tier: see
		// docs/design.md, the log's limits).
		return l.originalArchived(ctx, conv, id, sseq)
	}
	if err != nil {
		return natter.Ack{}, fmt.Errorf("read original at stream seq %d: %w", sseq, err)
	}
	m, err := Decode(raw.Data, raw.Header)
	if err != nil {
		return natter.Ack{}, err
	}
	if m.ID != id {
		return natter.Ack{}, fmt.Errorf("%w: duplicate ack for %s points at %s (stream seq %d)", ErrCorrupt, id, m.ID, sseq)
	}
	ack := ackOf(m)
	ack.Dup = true
	return ack, nil
}

// originalArchived answers a duplicate ack whose entry is trimmed from the
// hot tier: from the archive.
func (l *Log) originalArchived(ctx context.Context, conv, id string, sseq uint64) (natter.Ack, error) {
	if l.cfg.Archive == nil {
		return natter.Ack{}, fmt.Errorf("duplicate of stream seq %d, which is trimmed, and no archive to read it from", sseq)
	}
	m, ok, err := l.cfg.Archive.ArchivedMessage(ctx, conv, id)
	if err != nil || !ok {
		return natter.Ack{}, fmt.Errorf("duplicate of stream seq %d, which is trimmed and not archived: %w", sseq, errors.Join(err, jetstream.ErrMsgNotFound))
	}
	ack := ackOf(m)
	ack.Dup = true
	return ack, nil
}

// isWrongLastSeq reports a failed compare-and-set: 10071, or 10164 on
// replicated streams.
func isWrongLastSeq(err error) bool {
	var jerr jetstream.JetStreamError
	if !errors.As(err, &jerr) || jerr.APIError() == nil {
		return false
	}
	c := jerr.APIError().ErrorCode
	return c == jetstream.JSErrCodeStreamWrongLastSequence || c == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// backoff waits before retry attempt+1: not at all after the first conflict
// (the winner is done by then), then a jittered wait growing to ~5ms.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(250*time.Microsecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pubBuf is an append's request: its header map and payload buffer are
// reused by the next append once the request is written.
type pubBuf struct{ msg nats.Msg }

// maxPooledPayload bounds the payload buffer kept for reuse: a rare large
// message does not pin its buffer.
const maxPooledPayload = 16 << 10

var pubBufs = sync.Pool{New: func() any { return &pubBuf{msg: nats.Msg{Header: make(nats.Header, 8)}} }}

func getPubBuf() *pubBuf { return pubBufs.Get().(*pubBuf) }

// putPubBuf empties pb (no header nor byte of this append reaches the next)
// and keeps it for reuse.
func putPubBuf(pb *pubBuf) {
	clear(pb.msg.Header)
	if cap(pb.msg.Data) > maxPooledPayload {
		pb.msg.Data = nil
	}
	pb.msg.Data = pb.msg.Data[:0]
	pb.msg.Subject = ""
	pubBufs.Put(pb)
}
