package msglog

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/kvbatch"
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
	directGet  string        // $JS.API.DIRECT.GET.MSGS (honours the js API prefix)
	timeout    time.Duration // for requests whose ctx has no deadline
	batchBytes int           // max_bytes of a batched read; 0 = the server's limit (tests lower it)
	log        *slog.Logger
	cfg        Config
	mux        *kvbatch.Mux
	locks      *convLocks
	heads      *headCache
	floor      ackFloor // the PERSIST consumer's, for the retry check
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
	scanned    atomic.Uint64 // entries the retry check read
	stalls     atomic.Uint64 // append attempts retried after no answer
}

// New returns a Log on the MSGS stream, which must exist (streams.Apply
// creates it) and allow direct gets.
func New(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config) (*Log, error) {
	cfg = cfg.withDefaults()
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, fmt.Errorf("msglog: new: stream %s: %w", subjects.StreamMsgs, err)
	}
	if !st.CachedInfo().Config.AllowDirect {
		return nil, fmt.Errorf("msglog: new: stream %s does not allow direct get", subjects.StreamMsgs)
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
		directGet: kvbatch.DirectGet(opts, subjects.StreamMsgs),
		timeout:   timeout,
		log:       cfg.Logger,
		cfg:       cfg,
		locks:     newConvLocks(),
		heads:     newHeadCache(cfg.HeadCacheSize),
	}
	mux, err := kvbatch.NewMux(nc)
	if err != nil {
		return nil, fmt.Errorf("msglog: new: reply subscription: %w", err)
	}
	l.mux = mux
	return l, nil
}

// Close releases the Log's reply subscription. The connection stays open;
// it is the caller's. Close is safe to call twice.
func (l *Log) Close() error {
	if err := l.mux.Close(); err != nil {
		return fmt.Errorf("msglog: close: %w", err)
	}
	return nil
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
		// Its own variable: &m would put every decoded message on the heap,
		// the fast path's included.
		var jm natter.Message
		if err := json.Unmarshal(data, &jm); err != nil {
			return natter.Message{}, fmt.Errorf("msglog: decode: %w: %w", ErrCorrupt, err)
		}
		m = jm
	}
	if m.ID == "" || m.Conv == "" || m.Seq == 0 {
		return natter.Message{}, fmt.Errorf("msglog: decode: %w: missing id, conv or seq", ErrCorrupt)
	}
	var nb [20]byte // the payload's seq in decimal, without a string allocated
	if v := hdr.Get(HeaderSeq); v != "" && v != string(strconv.AppendUint(nb[:0], m.Seq, 10)) {
		return natter.Message{}, fmt.Errorf("msglog: decode: %w: header seq %s, payload seq %d", ErrCorrupt, v, m.Seq)
	}
	return m, nil
}

// ackOf is the sender's ack for an accepted message.
func ackOf(m natter.Message) natter.Ack {
	return natter.Ack{ID: m.ID, Conv: m.Conv, Seq: m.Seq, TS: m.TS}
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
