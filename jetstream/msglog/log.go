package msglog

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Headers natter sets on every log entry, besides Nats-Msg-Id (the message id).
const (
	// HeaderSeq is the per-conversation seq (1, 2, 3 ...).
	HeaderSeq = "Natter-Seq"
	// HeaderBlk is the stream sequence of the first entry of this entry's
	// block, "0" when this entry is the first.
	HeaderBlk = "Natter-Blk"
	// HeaderPBlk is the stream sequence of the first entry of the previous
	// block, "0" when there is none.
	HeaderPBlk = "Natter-PBlk"
	// HeaderPrev is the back window: the stream sequences of the
	// conversation's previous [Window] entries, compactly encoded (see
	// window.go). Absent on the first entry of a conversation and on entries
	// written before it existed.
	HeaderPrev = "Natter-Prev"
)

// BlockSize is how many seqs one anchor block spans: the message with seq s
// is in block (s-1)/BlockSize.
const BlockSize = 64

// DefaultType is the Type of a message sent without one.
const DefaultType = "text"

// Log appends to and reads the conversation log. It is safe for concurrent
// use; one Log per process is enough.
type Log struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	stream     jetstream.Stream
	idem       jetstream.KeyValue
	ajs        jetstream.JetStream // async IDEM creates; its error handler logs
	idemPre    string              // subject prefix of IDEM keys: $KV.IDEM.
	directGet  string              // $JS.API.DIRECT.GET.MSGS (honours the js API prefix)
	idemGet    string              // $JS.API.DIRECT.GET.KV_IDEM
	timeout    time.Duration       // for requests whose ctx has no deadline
	batchBytes int                 // max_bytes of a batched read; 0 = the server's limit (tests lower it)
	log        *slog.Logger
	cfg        Config
	mux        *replyMux
	locks      *convLocks
	heads      *headCache
	stats      readStats
	walkOnly   bool // tests: read every page as entries without back windows are read
}

// readStats counts how pages were read (tests check the path taken) and
// how often an append attempt stalled.
type readStats struct {
	hops       atomic.Uint64 // back-window hops (one direct get each)
	walks      atomic.Uint64 // pages read with one batched read from their first entry
	gets       atomic.Uint64 // pages read with one direct get per entry
	blockWalks atomic.Uint64 // pages read over block starts (no back windows)
	stalls     atomic.Uint64 // append attempts retried after no answer
}

// New returns a Log on the MSGS stream and the IDEM bucket, which must exist
// (streams.Apply creates them). The stream must allow direct gets.
func New(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config) (*Log, error) {
	cfg = cfg.withDefaults()
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, fmt.Errorf("msglog: new: stream %s: %w", subjects.StreamMsgs, err)
	}
	if !st.CachedInfo().Config.AllowDirect {
		return nil, fmt.Errorf("msglog: new: stream %s does not allow direct get", subjects.StreamMsgs)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketIdem)
	if err != nil {
		return nil, fmt.Errorf("msglog: new: bucket %s: %w", subjects.BucketIdem, err)
	}
	opts := js.Options()
	timeout := opts.DefaultTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	l := &Log{
		nc:        nc,
		js:        js,
		stream:    st,
		idem:      kv,
		idemPre:   "$KV." + subjects.BucketIdem + ".",
		directGet: apiPrefix(opts) + "DIRECT.GET." + subjects.StreamMsgs,
		idemGet:   apiPrefix(opts) + "DIRECT.GET.KV_" + subjects.BucketIdem,
		timeout:   timeout,
		log:       cfg.Logger,
		cfg:       cfg,
		locks:     newConvLocks(),
		heads:     newHeadCache(cfg.HeadCacheSize),
	}
	// A JetStream context of its own for the async IDEM creates, so that
	// their error handler and limits are the Log's. Its API prefix is the
	// caller's (async publishes do not use it, but keep the two alike).
	aopts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncErrHandler(l.idemAsyncErr),
		jetstream.WithPublishAsyncMaxPending(idemMaxPending),
		jetstream.WithPublishAsyncTimeout(timeout),
	}
	switch {
	case opts.Domain != "":
		l.ajs, err = jetstream.NewWithDomain(nc, opts.Domain, aopts...)
	case opts.APIPrefix != "":
		l.ajs, err = jetstream.NewWithAPIPrefix(nc, opts.APIPrefix, aopts...)
	default:
		l.ajs, err = jetstream.New(nc, aopts...)
	}
	if err != nil {
		return nil, fmt.Errorf("msglog: new: %w", err)
	}
	mux, err := newReplyMux(nc)
	if err != nil {
		return nil, fmt.Errorf("msglog: new: reply subscription: %w", err)
	}
	l.mux = mux
	return l, nil
}

// idemMaxPending bounds the async IDEM creates in flight; beyond it an
// append waits (up to nats.go's stall wait, 200ms) for acks to come back.
const idemMaxPending = 16384

// Close waits up to a second for the IDEM creates in flight to be acked
// (the persist worker writes any that are lost) and releases the Log's
// reply subscriptions. The connection stays open; it is the caller's.
// Close is safe to call twice.
func (l *Log) Close() error {
	if l.ajs.PublishAsyncPending() > 0 && l.nc.IsConnected() {
		t := time.NewTimer(time.Second)
		select {
		case <-l.ajs.PublishAsyncComplete():
		case <-t.C:
		}
		t.Stop()
	}
	l.ajs.CleanupPublisher()
	if err := l.mux.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("msglog: close: %w", err)
	}
	return nil
}

// apiPrefix mirrors how nats.go derives the JetStream API prefix.
func apiPrefix(o jetstream.JetStreamOptions) string {
	p := jetstream.DefaultAPIPrefix
	switch {
	case o.Domain != "":
		p = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		p = o.APIPrefix
	}
	if !strings.HasSuffix(p, ".") {
		p += "."
	}
	return p
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// MessageID returns the id of the message (conv, from, cmid): "m_" and the
// first 26 characters of the lowercase unpadded base32 of
// sha256(conv "\n" from "\n" cmid). Retries of one send get one id.
func MessageID(conv, from, cmid string) string {
	// Ids are at most 64 bytes each, so the input fits the stack buffer;
	// the result is the only allocation.
	var in [3*64 + 2]byte
	b := append(append(append(append(append(in[:0], conv...), '\n'), from...), '\n'), cmid...)
	sum := sha256.Sum256(b)
	var enc [56]byte // base32 of 32 bytes, unpadded: 52 characters
	idEncoding.Encode(enc[:], sum[:])
	id := enc[:2+26]
	copy(id[2:], enc[:26])
	id[0], id[1] = 'm', '_'
	for i := 2; i < len(id); i++ {
		if c := id[i]; c >= 'A' && c <= 'Z' {
			id[i] = c + 'a' - 'A'
		}
	}
	return string(id)
}

// Decode returns the message of a log entry from its payload and headers
// (for workers: m.Data(), m.Headers()). hdr may be nil; when it carries
// [HeaderSeq] that must match the payload. Errors wrap [ErrCorrupt].
func Decode(data []byte, hdr nats.Header) (natter.Message, error) {
	m, ok := parseMessage(data)
	if !ok {
		if err := json.Unmarshal(data, &m); err != nil {
			return natter.Message{}, fmt.Errorf("msglog: decode: %w: %w", ErrCorrupt, err)
		}
	}
	if m.ID == "" || m.Conv == "" || m.Seq == 0 {
		return natter.Message{}, fmt.Errorf("msglog: decode: %w: missing id, conv or seq", ErrCorrupt)
	}
	if v := hdr.Get(HeaderSeq); v != "" && v != strconv.FormatUint(m.Seq, 10) {
		return natter.Message{}, fmt.Errorf("msglog: decode: %w: header seq %s, payload seq %d", ErrCorrupt, v, m.Seq)
	}
	return m, nil
}

// ackOf is the sender's ack for an accepted message.
func ackOf(m natter.Message) natter.Ack {
	return natter.Ack{ID: m.ID, Conv: m.Conv, Seq: m.Seq, TS: m.TS}
}

// EnsureIdem creates the IDEM record of msg unless one exists; it never
// overwrites. The persist worker calls it for every message it stores, which
// closes the window where an edge dies between its append and its own IDEM
// write.
func (l *Log) EnsureIdem(ctx context.Context, msg natter.Message) error {
	if msg.ID == "" || msg.Seq == 0 {
		return fmt.Errorf("msglog: ensure idem: %w: message without id or seq", ErrInvalid)
	}
	if err := l.putIdem(ctx, ackOf(msg)); err != nil {
		return fmt.Errorf("msglog: ensure idem %s: %w", msg.ID, err)
	}
	return nil
}

func (l *Log) putIdem(ctx context.Context, ack natter.Ack) error {
	ack.Dup = false
	if _, err := l.idem.Create(ctx, ack.ID, appendAck(nil, ack)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	return nil
}

// getIdem returns the stored ack of id; ok is false when there is none.
func (l *Log) getIdem(ctx context.Context, id string) (ack natter.Ack, ok bool, err error) {
	e, err := l.idem.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return natter.Ack{}, false, nil
	}
	if err != nil {
		return natter.Ack{}, false, err
	}
	if err := json.Unmarshal(e.Value(), &ack); err != nil {
		return natter.Ack{}, false, fmt.Errorf("%w: idem record %s: %w", ErrCorrupt, id, err)
	}
	return ack, true, nil
}

// Head returns the newest seq of conv, 0 when it has no messages.
func (l *Log) Head(ctx context.Context, conv string) (uint64, error) {
	if err := subjects.ValidID(conv); err != nil {
		return 0, fmt.Errorf("msglog: head: %w: %w", ErrInvalid, err)
	}
	h, err := l.readHead(ctx, conv)
	if err != nil {
		return 0, fmt.Errorf("msglog: head %s: %w", conv, err)
	}
	return h.seq, nil
}

// Heads returns the newest seq of each of convs (0 for those without
// messages) with one batched direct get per 256 conversations.
func (l *Log) Heads(ctx context.Context, convs []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(convs))
	for _, c := range convs {
		if err := subjects.ValidID(c); err != nil {
			return nil, fmt.Errorf("msglog: heads: %w: %w", ErrInvalid, err)
		}
		out[c] = 0
	}
	const chunk = 256
	for i := 0; i < len(convs); i += chunk {
		part := convs[i:min(i+chunk, len(convs))]
		filters := make([]string, len(part))
		for j, c := range part {
			filters[j] = subjects.Msg(c)
		}
		_, err := l.directBatch(ctx, directReq{MultiLast: filters}, func(m *nats.Msg) (bool, error) {
			conv := subjects.ConvFromMsg(m.Header.Get(jetstream.SubjectHeader))
			seq, err := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
			if err != nil || conv == "" {
				return false, fmt.Errorf("%w: entry without %s or subject", ErrCorrupt, HeaderSeq)
			}
			out[conv] = seq
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("msglog: heads: %w", err)
		}
	}
	return out, nil
}

// EnsureIdemBatch is [Log.EnsureIdem] for a batch, read first: the keys are
// read in one batched direct get per 256 (the usual case: the edge wrote
// every record right after its append, and nothing is published); the keys
// with no live record (none, or a delete or purge marker) are created with
// asynchronous publishes carrying an expected-last-sequence of 0 (what KV
// Create does), and a key whose create finds an entry after all (a marker,
// or the edge's record landing between the read and the create) goes
// through [Log.EnsureIdem] one by one. It returns one error (or nil) per
// message.
func (l *Log) EnsureIdemBatch(ctx context.Context, msgs []natter.Message) []error {
	errs := make([]error, len(msgs))
	idx := make([]int, 0, len(msgs))
	for i, m := range msgs {
		if m.ID == "" || m.Seq == 0 {
			errs[i] = fmt.Errorf("msglog: ensure idem: %w: message without id or seq", ErrInvalid)
			continue
		}
		idx = append(idx, i)
	}
	missing := l.idemNotLive(ctx, msgs, idx)
	futures := make([]jetstream.PubAckFuture, len(missing))
	for k, i := range missing {
		msg := &nats.Msg{
			Subject: l.idemPre + msgs[i].ID,
			Data:    appendAck(nil, ackOf(msgs[i])),
			Header:  nats.Header{jetstream.ExpectedLastSubjSeqHeader: idemCreate},
		}
		var err error
		if futures[k], err = l.js.PublishMsgAsync(msg); err != nil {
			errs[i] = err
		}
	}
	for k, f := range futures {
		if f == nil {
			continue
		}
		i := missing[k]
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if isWrongLastSeq(err) {
				// Something is there: a record or a delete marker.
				errs[i] = l.EnsureIdem(ctx, msgs[i])
			} else {
				errs[i] = fmt.Errorf("msglog: ensure idem %s: %w", msgs[i].ID, err)
			}
		case <-ctx.Done():
			errs[i] = fmt.Errorf("msglog: ensure idem %s: %w", msgs[i].ID, ctx.Err())
		}
	}
	return errs
}

// idemNotLive returns the indexes among idx whose IDEM key does not hold a
// live record: its last entry is a delete or purge marker, or the batched
// read did not return it (or failed). Those need a create one by one.
func (l *Log) idemNotLive(ctx context.Context, msgs []natter.Message, idx []int) []int {
	if len(idx) == 0 {
		return nil
	}
	const chunk = 256
	var out []int
	for c := 0; c < len(idx); c += chunk {
		part := idx[c:min(c+chunk, len(idx))]
		live := make(map[string]bool, len(part))
		filters := make([]string, len(part))
		for j, i := range part {
			filters[j] = l.idemPre + msgs[i].ID
		}
		_, err := l.directBatchOn(ctx, l.idemGet, directReq{MultiLast: filters}, func(m *nats.Msg) (bool, error) {
			switch m.Header.Get("KV-Operation") {
			case "DEL", "PURGE":
			default:
				live[m.Header.Get(jetstream.SubjectHeader)] = true
			}
			return true, nil
		})
		for j, i := range part {
			if err != nil || !live[filters[j]] {
				out = append(out, i)
			}
		}
	}
	return out
}
