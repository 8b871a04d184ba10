package journey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/tracing"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// DefaultMaxMembers is how many members' cursors a report reads when
// Source.MaxMembers is zero.
const DefaultMaxMembers = 200

// ErrNotFound means the conversation has no message with that seq.
var ErrNotFound = errors.New("journey: no such message")

// Source is where a report's facts come from.
type Source struct {
	JS    jetstream.JetStream
	Log   *msglog.Log
	Convs *convapi.Client
	// MaxMembers bounds the members whose cursors are read (the first ones
	// in the member list's order). Zero means [DefaultMaxMembers].
	MaxMembers int
}

// Report is one message's journey. Times are UTC.
type Report struct {
	Conv string         `json:"conv"`
	Seq  uint64         `json:"seq"`
	Msg  natter.Message `json:"msg"`
	// HotTier says the MSGS entry is still in the hot tier; the Appended
	// facts but AppendedTS come from it.
	HotTier bool `json:"hot_tier"`
	// StreamSeq is the entry's MSGS stream sequence (0 when trimmed).
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// Appended is when JetStream stored the entry (exact).
	Appended time.Time `json:"appended,omitzero"`
	// AppendedTS is the message's ts: the appending edge's clock.
	AppendedTS time.Time `json:"appended_ts"`
	// Edge is the edge that appended it; recorded for sampled sends only.
	Edge string `json:"edge,omitempty"`
	// TraceParent is the W3C trace context of a sampled send.
	TraceParent string  `json:"traceparent,omitempty"`
	Archive     Archive `json:"archive"`
	// Members is the conversation's member count; Cursors covers the first
	// MaxMembers of them.
	Members   int      `json:"members"`
	CursorsOf int      `json:"cursors_of"`
	Delivered []Device `json:"delivered"`
	Read      []Reader `json:"read"`
}

// Archive is what is known of the message's archiving.
type Archive struct {
	// Stored says the archive (messages collection) holds the message.
	Stored bool `json:"stored"`
	// Floor is the PERSIST consumer's ack floor (a stream sequence);
	// Persisted says it is at or past the entry.
	Floor     uint64 `json:"persist_floor"`
	Persisted bool   `json:"persisted"`
	// By is the time of the PERSIST consumer's last ack: the floor passed
	// the entry at or before it (an upper bound; zero when unknown).
	By time.Time `json:"by,omitzero"`
}

// Device is one member device's delivered cursor.
type Device struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Cursor uint64 `json:"cursor"`
	// Passed says Cursor >= Seq: the device had the message By (the time
	// its cursor was last written; an upper bound).
	Passed bool      `json:"passed"`
	By     time.Time `json:"by"`
}

// Reader is one member's read cursor; a member without one is absent.
type Reader struct {
	User   string    `json:"user"`
	Cursor uint64    `json:"cursor"`
	Passed bool      `json:"passed"`
	By     time.Time `json:"by"`
}

// Trace returns the journey of seq in conv.
func Trace(ctx context.Context, src Source, conv string, seq uint64) (*Report, error) {
	if err := subjects.ValidID(conv); err != nil {
		return nil, fmt.Errorf("journey: conv: %w", err)
	}
	r := &Report{Conv: conv, Seq: seq}
	if err := r.entry(ctx, src); err != nil {
		return nil, err
	}
	if err := r.archive(ctx, src); err != nil {
		return nil, err
	}
	if err := r.cursors(ctx, src); err != nil {
		return nil, err
	}
	return r, nil
}

// entry reads the MSGS entry, or the archive's copy once it is trimmed.
func (r *Report) entry(ctx context.Context, src Source) error {
	raw, err := src.Log.Stored(ctx, r.Conv, r.Seq)
	switch {
	case err == nil:
		m, err := msglog.Decode(raw.Data, raw.Header)
		if err != nil {
			return fmt.Errorf("journey: entry: %w", err)
		}
		r.Msg, r.HotTier, r.StreamSeq, r.Appended = m, true, raw.Sequence, raw.Time.UTC()
		r.Edge, r.TraceParent = raw.Header.Get(tracing.OriginHeader), raw.Header.Get(tracing.Header)
	case errors.Is(err, msglog.ErrNoSuchSeq):
		return fmt.Errorf("%w: %s seq %d: %w", ErrNotFound, r.Conv, r.Seq, err)
	case errors.Is(err, msglog.ErrTrimmed):
		page, err := src.Convs.Messages(ctx, convapi.MessagesRequest{Conv: r.Conv, Before: r.Seq + 1, Limit: 1})
		if err != nil {
			return fmt.Errorf("journey: archive: %w", err)
		}
		if len(page.Msgs) != 1 || page.Msgs[0].Seq != r.Seq {
			return fmt.Errorf("%w: %s seq %d: trimmed from the hot tier and not in the archive", ErrNotFound, r.Conv, r.Seq)
		}
		r.Msg = page.Msgs[0]
	default:
		return fmt.Errorf("journey: entry: %w", err)
	}
	r.AppendedTS = time.UnixMilli(r.Msg.TS).UTC()
	return nil
}

// archive reads the PERSIST consumer's ack floor and looks the message up
// in the archive by id.
func (r *Report) archive(ctx context.Context, src Source) error {
	_, found, err := src.Convs.ArchivedMessage(ctx, r.Conv, r.Msg.ID)
	if err != nil {
		return fmt.Errorf("journey: archive: %w", err)
	}
	r.Archive.Stored = found
	cons, err := src.JS.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		return fmt.Errorf("journey: consumer %s: %w", subjects.ConsumerPersist, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("journey: consumer %s: %w", subjects.ConsumerPersist, err)
	}
	r.Archive.Floor = info.AckFloor.Stream
	r.Archive.Persisted = !r.HotTier || info.AckFloor.Stream >= r.StreamSeq
	if r.Archive.Persisted && r.HotTier && info.AckFloor.Last != nil {
		r.Archive.By = info.AckFloor.Last.UTC()
	}
	return nil
}

// cursors reads the members' delivered and read cursors with one filtered
// watch of their keys.
func (r *Report) cursors(ctx context.Context, src Source) error {
	members, err := src.Convs.Members(ctx, r.Conv)
	if err != nil {
		return fmt.Errorf("journey: members: %w", err)
	}
	r.Members = len(members)
	limit := src.MaxMembers
	if limit <= 0 {
		limit = DefaultMaxMembers
	}
	members = members[:min(len(members), limit)]
	r.CursorsOf = len(members)
	r.Delivered, r.Read = []Device{}, []Reader{}
	if len(members) == 0 {
		return nil
	}
	kv, err := src.JS.KeyValue(ctx, subjects.BucketCursors)
	if err != nil {
		return fmt.Errorf("journey: bucket %s: %w", subjects.BucketCursors, err)
	}
	keys := make([]string, 0, 2*len(members))
	isMember := make(map[string]bool, len(members))
	for _, u := range members {
		isMember[u] = true
		keys = append(keys, subjects.ReadKey(u, r.Conv), subjects.DeliveredKey(u, "*", r.Conv))
	}
	w, err := kv.WatchFiltered(ctx, keys, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("journey: cursors: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return fmt.Errorf("journey: cursors: %w", ctx.Err())
		}
		if e == nil {
			break // the current values are all in
		}
		r.add(e, isMember)
	}
	slices.SortFunc(r.Delivered, func(a, b Device) int {
		return cmp.Or(strings.Compare(a.User, b.User), strings.Compare(a.Device, b.Device))
	})
	slices.SortFunc(r.Read, func(a, b Reader) int { return strings.Compare(a.User, b.User) })
	return nil
}

// add files one cursor entry.
func (r *Report) add(e jetstream.KeyValueEntry, isMember map[string]bool) {
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return
	}
	user, device, ok := splitKey(e.Key(), r.Conv)
	if !ok || !isMember[user] {
		return
	}
	by := e.Created().UTC()
	if device == "" {
		r.Read = append(r.Read, Reader{User: user, Cursor: n, Passed: n >= r.Seq, By: by})
		return
	}
	r.Delivered = append(r.Delivered, Device{User: user, Device: device, Cursor: n, Passed: n >= r.Seq, By: by})
}

// splitKey splits a CURSORS key of conv: <user>.<conv> (device "") or
// <user>.<device>.<conv>.
func splitKey(key, conv string) (user, device string, ok bool) {
	rest, found := strings.CutSuffix(key, "."+conv)
	if !found {
		return "", "", false
	}
	user, device, _ = strings.Cut(rest, ".")
	return user, device, true
}
