package msglog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Archive finds archived messages by id: the store of record behind the
// persist worker. The node hands in the conversations service's client
// (convapi.Client.ArchivedMessage, a request over NATS), so that the log
// needs neither MongoDB nor the workers.
type Archive interface {
	// ArchivedMessage returns the archived message id of conv; found is
	// false when the archive does not hold it. It must read what the persist
	// worker has acknowledged (MongoDB's primary), not a lagging copy.
	ArchivedMessage(ctx context.Context, conv, id string) (m natter.Message, found bool, err error)
}

// sent looks for an earlier copy of message id in conv, whose newest entry
// is h: an append of a retry. Every copy that exists is either
//   - archived: its stream sequence is at most the PERSIST consumer's ack
//     floor, which only grows, read before the archive is asked (a cached
//     floor is an older, so lower, one: still a floor), or
//   - in the hot tier above that floor, at most h (a copy newer than h
//     makes the append's compare-and-set on h fail, and the retry after
//     that looks again with the newer head).
//
// So sent reads the conversation's entries from the floor to h (none when
// the persist worker keeps up: the floor is past h) and then asks the
// archive. A copy neither archived nor in the hot tier (trimmed before the
// persist worker stored it, or dead-lettered by it) is not found.
func (l *Log) sent(ctx context.Context, conv, id string, h head) (natter.Ack, bool, error) {
	if h.seq == 0 {
		return natter.Ack{}, false, nil // an empty conversation holds no copy
	}
	floor, err := l.floor.get(ctx, l)
	if err != nil {
		return natter.Ack{}, false, err
	}
	if h.stream > floor {
		m, ok, err := l.scanFor(ctx, conv, id, floor+1, h.seq)
		if err != nil || ok {
			return ackOf(m), ok, err
		}
	}
	if l.cfg.Archive == nil {
		return natter.Ack{}, false, nil
	}
	m, ok, err := l.cfg.Archive.ArchivedMessage(ctx, conv, id)
	if err != nil {
		return natter.Ack{}, false, fmt.Errorf("archive: %w", err)
	}
	if ok && (m.ID != id || m.Conv != conv || m.Seq == 0) {
		return natter.Ack{}, false, fmt.Errorf("%w: archive answered %s of %s (seq %d) for %s", ErrCorrupt, m.ID, m.Conv, m.Seq, id)
	}
	return ackOf(m), ok, nil
}

// scanFor reads the entries of conv from stream sequence from on, up to its
// seq upTo, and returns the one with id: batched direct gets without
// headers (next_by_subj), stopping at the first match.
func (l *Log) scanFor(ctx context.Context, conv, id string, from, upTo uint64) (natter.Message, bool, error) {
	subj := subjects.Msg(conv)
	want := []byte(`{"id":"` + id + `"`)
	for {
		var (
			found natter.Message
			hit   bool
			done  bool
			got   int
		)
		e, err := l.directBatch(ctx, directReq{Seq: from, NextFor: subj, Batch: scanBatch, NoHeaders: true, MaxBytes: l.batchBytes}, func(m *nats.Msg) (bool, error) {
			got++
			// Entries this log wrote start with their id; read the others.
			if bytes.HasPrefix(m.Data, []byte(`{"id":"`)) && !bytes.HasPrefix(m.Data, want) {
				seq, _, err := checkEntry(m.Data, conv)
				if err != nil {
					return false, err
				}
				done = seq >= upTo
				return !done, nil
			}
			dm, err := Decode(m.Data, nil)
			if err != nil {
				return false, err
			}
			if dm.ID == id {
				found, hit = dm, true
				return false, nil
			}
			done = dm.Seq >= upTo
			return !done, nil
		})
		if err != nil {
			return natter.Message{}, false, fmt.Errorf("scan %s: %w", subj, err)
		}
		if hit {
			if found.Conv != conv {
				return natter.Message{}, false, fmt.Errorf("%w: entry %s of %s read on %s", ErrCorrupt, found.ID, found.Conv, subj)
			}
			return found, true, nil
		}
		if done || got == 0 || e.pending == 0 || e.last == 0 {
			return natter.Message{}, false, nil
		}
		from = e.last + 1
	}
}

// scanBatch is how many entries one request of [Log.scanFor] asks for.
const scanBatch = 256

// ackFloor caches the PERSIST consumer's ack floor on MSGS: every entry at or
// below it is archived. A cached value is reused for [Config.FloorTTL];
// since the floor only grows, an old value is a lower bound and costs only
// a longer scan.
type ackFloor struct {
	mu     sync.Mutex
	at     time.Time
	v      uint64
	warned bool
}

func (f *ackFloor) get(ctx context.Context, l *Log) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.at.IsZero() && time.Since(f.at) < l.cfg.FloorTTL {
		return f.v, nil
	}
	c, err := l.stream.Consumer(ctx, subjects.ConsumerPersist)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// The stream is gone (deleted, or being recreated): it holds no
		// copy, and the read that follows fails as the append's other
		// requests do (no responders: a stalled attempt, retried).
		return 0, nil
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		// Nothing archives: every copy is in the hot tier.
		if !f.warned {
			f.warned = true
			l.log.Warn("no PERSIST consumer on MSGS: retries are checked against the whole hot tier", "stream", subjects.StreamMsgs)
		}
		f.v, f.at = 0, time.Now()
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("persist ack floor: %w", err)
	}
	f.v, f.at = c.CachedInfo().AckFloor.Stream, time.Now()
	return f.v, nil
}
