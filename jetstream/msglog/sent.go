package msglog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
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
//     that looks again with the newer head); of those, a copy stored within
//     the stream's dedup window is JetStream's duplicate at the publish
//     that follows (the compare-and-set on h passes first), so only the
//     older ones need reading.
//
// So sent reads the conversation's entries from the floor to h, stopping
// at the first one younger than the dedup window less a margin
// ([dedupCutoff]); none at all when the persist worker keeps up; and then
// asks the archive. A copy neither archived nor in the hot tier (trimmed
// before the persist worker stored it, or dead-lettered by it) is not
// found.
func (l *Log) sent(ctx context.Context, conv, id string, h head) (natter.Ack, bool, error) {
	if h.seq == 0 {
		return natter.Ack{}, false, nil // an empty conversation holds no copy
	}
	floor, window, err := l.floor.get(ctx, l)
	if err != nil {
		return natter.Ack{}, false, err
	}
	if h.stream > floor {
		m, ok, err := l.scanFor(ctx, conv, id, floor+1, h.seq, dedupCutoff(time.Now(), window))
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

// dedupCutoff is the ts (ms) from which a stored entry is still inside the
// stream's dedup window when the append publishes: now less the window
// less a margin of a quarter of the window, at least 5 s, for the time
// until the publish (an attempt lasts at most Config.AttemptTimeout, 2 s)
// and for the appenders' clocks (an entry's ts is its appender's). With a
// window no longer than the margin nothing is: math.MaxInt64.
func dedupCutoff(now time.Time, window time.Duration) int64 {
	margin := max(window/4, 5*time.Second)
	if window <= margin {
		return math.MaxInt64
	}
	return now.Add(-(window - margin)).UnixMilli()
}

// scanFor reads the entries of conv from stream sequence from on, up to its
// seq upTo or the first entry with a ts of at least until, and returns the
// one with id: batched direct gets without headers (next_by_subj), the
// first of a few entries, stopping at the first match.
func (l *Log) scanFor(ctx context.Context, conv, id string, from, upTo uint64, until int64) (natter.Message, bool, error) {
	subj := subjects.Msg(conv)
	want := []byte(`{"id":"` + id + `"`)
	batch := scanFirstBatch
	for {
		var (
			found natter.Message
			hit   bool
			done  bool
			got   int
		)
		e, err := l.directBatch(ctx, directReq{Seq: from, NextFor: subj, Batch: batch, NoHeaders: true, MaxBytes: l.batchBytes}, func(m *nats.Msg) (bool, error) {
			got++
			l.stats.scanned.Add(1)
			// Entries this log wrote start with their id; read the others.
			if bytes.HasPrefix(m.Data, []byte(`{"id":"`)) && !bytes.HasPrefix(m.Data, want) {
				seq, _, err := checkEntry(m.Data, conv)
				if err != nil {
					return false, err
				}
				ts, ok := entryTS(m.Data)
				if !ok {
					dm, err := Decode(m.Data, nil)
					if err != nil {
						return false, err
					}
					ts = dm.TS
				}
				done = seq >= upTo || ts >= until
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
			done = dm.Seq >= upTo || dm.TS >= until
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
		batch = scanBatch
	}
}

// scanFirstBatch and scanBatch are how many entries the first and each
// further request of [Log.scanFor] ask for: the first entry above the floor
// is usually inside the dedup window already, and ends the read.
const (
	scanFirstBatch = 8
	scanBatch      = 256
)

// entryTS reads the ts of an entry laid out as appendMessage writes it (ts
// last: `,"ts":<int>}`; a body's quotes are escaped, so the key cannot occur
// in it). ok is false for another layout.
func entryTS(data []byte) (int64, bool) {
	const key = `,"ts":`
	i := bytes.LastIndex(data, []byte(key))
	if i < 0 || len(data) < 2 || data[len(data)-1] != '}' {
		return 0, false
	}
	ts, err := strconv.ParseInt(string(data[i+len(key):len(data)-1]), 10, 64)
	return ts, err == nil
}

// ackFloor caches the PERSIST consumer's ack floor on MSGS (every entry at
// or below it is archived) and the stream's dedup window. They are reused
// for [Config.FloorTTL]; since the floor only grows, an old value is a
// lower bound and costs only a longer read. The window is the stream's as
// of the last read: lowering it (natter streams apply) while appends run
// narrows the retry check for up to FloorTTL.
type ackFloor struct {
	mu     sync.Mutex
	at     time.Time
	v      uint64
	window time.Duration
	warned bool
}

func (f *ackFloor) get(ctx context.Context, l *Log) (uint64, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.at.IsZero() && time.Since(f.at) < l.cfg.FloorTTL {
		return f.v, f.window, nil
	}
	si, err := l.stream.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// The stream is gone (deleted, or being recreated): it holds no
		// copy, and the read that follows fails as the append's other
		// requests do (no responders: a stalled attempt, retried).
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stream info: %w", err)
	}
	window := si.Config.Duplicates
	c, err := l.stream.Consumer(ctx, subjects.ConsumerPersist)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, nil
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		// Nothing archives: every copy is in the hot tier.
		if !f.warned {
			f.warned = true
			l.log.Warn("no PERSIST consumer on MSGS: retries are checked against the whole hot tier", "stream", subjects.StreamMsgs)
		}
		f.v, f.window, f.at = 0, window, time.Now()
		return 0, window, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("persist ack floor: %w", err)
	}
	f.v, f.window, f.at = c.CachedInfo().AckFloor.Stream, window, time.Now()
	return f.v, f.window, nil
}
