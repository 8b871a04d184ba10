package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// History modes (--history-mode).
const (
	// HistoryNewest reads newest-50 pages from the hot tier.
	HistoryNewest = "newest"
	// HistoryArchive reads 200-message pages older than the hot tier, from
	// the archive (the conversations service's blocks).
	HistoryArchive = "archive"
)

// The archive mode's layout: archReadConvs conversations the readers page
// through, each with archBelow messages older than the hot tier (and the
// hot tier's worth newer), the rest of each size over archFillConvs other
// conversations that only the store holds.
const (
	archReadConvs = 4
	archBelow     = 2_000
	archFillConvs = 100
	archPage      = 200
	// archHotTier is the in-process target's hot tier (MSGS
	// MaxMsgsPerSubject) in this mode, so that the read conversations are
	// mostly archive; a running target keeps its own.
	archHotTier = 100
	// archBatch is the messages of one InsertMessages of the fill.
	archBatch = 1000
)

// historyArchive measures pages beyond the hot tier with each of
// --history-sizes messages stored in MongoDB: half history pages before a
// random seq, half sync pages (after a random seq, up to the hot tier),
// 200 messages each, at random places below the hot tier of archReadConvs
// conversations. The store is filled by InsertMessages and InsertBlocks
// straight into it (what the persist worker writes, without the log), in
// batches of 1,000, bounded by --fill-timeout; the read conversations' log
// entries go to the stream as history's fill writes them, and the hot tier
// trims them to its size.
func (r *runner) historyArchive(ctx context.Context) ([]*Result, error) {
	t, err := startTarget(ctx, &r.cfg, targetOpts{roles: []string{node.RoleConversations}, streams: streams.Config{HotTier: archHotTier}})
	if err != nil {
		return nil, err
	}
	defer t.close()
	if t.js == nil || t.mongoURI == "" {
		return nil, errors.New("history --history-mode archive: the fill needs NATS and MongoDB: give --nats-url and --mongo-uri")
	}
	hot, err := hotTier(ctx, t.js)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Config{URI: t.mongoURI})
	if err != nil {
		return nil, fmt.Errorf("history: store: %w", err)
	}
	defer func() { _ = st.Close(context.Background()) }()

	readers := r.cfg.conns("history")
	spec := clientSpec{urls: t.urls, key: t.key, aud: t.aud, iss: t.iss}
	user := historyUser(r.prefix)
	admin, err := spec.dial(ctx, user, t.urls[:1], 0)
	if err != nil {
		return nil, fmt.Errorf("history: dial: %w", err)
	}
	defer admin.Close()
	discard(admin)
	convs := make([]string, archReadConvs)
	for i := range convs {
		conv, err := admin.CreateGroup(ctx, fmt.Sprintf("history archive %d", i))
		if err != nil {
			return nil, fmt.Errorf("history: create conversation: %w", err)
		}
		convs[i] = conv.ID
	}
	perConv := archBelow + hot
	oldest := uint64(archBelow + 1) // the oldest seq of each read conversation in the hot tier

	res := &Result{Scenario: "history", Name: "history archive 200-message page", Target: t.name(), Conns: readers, Size: r.cfg.Size, Procs: r.cfg.Procs,
		PersistPending: -1, Unit: "pages/s"}
	deadline := time.Now().Add(r.cfg.FillTimeout)
	w := &archiveWriter{st: st, heads: map[string]uint64{}, open: map[string][]natter.Message{}, prefix: r.prefix, body: strings.Repeat("x", max(r.cfg.Size, 1))}

	// The read conversations: log entries (the hot tier keeps the newest
	// hot of each) and the same messages in the store.
	t0 := time.Now()
	f, err := newFiller(ctx, t.js, convs, user, r.cfg.Size)
	if err != nil {
		return nil, err
	}
	var kept []natter.Message
	f.keep = func(m natter.Message) { kept = append(kept, m) }
	if _, err := f.fill(ctx, perConv*len(convs), deadline); err != nil {
		return nil, err
	}
	if f.k < perConv*len(convs) {
		return nil, fmt.Errorf("history: the read conversations' %d log entries not appended within --fill-timeout %v", perConv*len(convs), r.cfg.FillTimeout)
	}
	if err := w.write(ctx, kept); err != nil {
		return nil, err
	}
	readSeconds := time.Since(t0).Seconds()

	var total float64
	var cpu *CPU
	var before int64 // stored before this size's fill (the first's includes the read conversations')
	for _, size := range r.cfg.HistorySizes {
		t0 := time.Now()
		stop := r.ticker("history archive fill", func() string {
			return fmt.Sprintf("stored %s of %s", commas(w.n.Load()), commas(int64(size)))
		})
		err := w.fill(ctx, int(size), deadline)
		stop()
		took := time.Since(t0).Seconds()
		if before == 0 {
			took += readSeconds
		}
		if err != nil {
			return nil, err
		}
		stored := uint64(w.n.Load())
		if stored < size {
			res.note("fill reached %s of %s messages within --fill-timeout %v: measured at %s (scaled down)", commas(int64(stored)), commas(int64(size)), r.cfg.FillTimeout, commas(int64(stored)))
		}
		if n := w.n.Load() - before; n > 0 {
			res.note("stored %s messages in %.1f s (%s/s, InsertMessages and InsertBlocks of 1,000 straight into the store)", commas(n), took, fnum(float64(n)/took))
		}
		before = w.n.Load()
		d, err := r.readArchive(ctx, t, readers, convs, oldest, stored)
		if err != nil {
			return nil, err
		}
		hp := HistoryPoint{Page: "archive 200-message", Stored: stored, Convs: len(convs), PerConv: uint64(perConv), FillSeconds: round3(took),
			Reads: d.delivered, Latency: d.lat.latency()}
		total += d.seconds()
		cpu = res.addHistoryPoint(hp, d, cpu)
		if stored < size {
			break
		}
	}
	res.Seconds = round3(total)
	if total > 0 {
		res.Throughput = round3(float64(res.Delivered) / total)
	}
	if cpu != nil {
		cpu.fill(total)
	}
	res.CPU = cpu
	res.note("reads by %d connections of one user, closed loop: 200-message pages below the hot tier (%d) of %d conversations of %s messages, half history before a random seq, half sync after one; CPU is per page read",
		readers, hot, len(convs), commas(int64(perConv)))
	res.historyTargets("archive page", "archive ", 20)
	return []*Result{res}, nil
}

// hotTier is the MSGS stream's hot tier: its MaxMsgsPerSubject.
func hotTier(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return 0, fmt.Errorf("history: stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("history: stream: %w", err)
	}
	if info.Config.MaxMsgsPerSubject <= 0 {
		return 0, fmt.Errorf("history: the %s stream keeps every message (no MaxMsgsPerSubject): no archive to read", subjects.StreamMsgs)
	}
	return int(info.Config.MaxMsgsPerSubject), nil
}

// readArchive reads HistoryReads archive pages with readers connections
// (generator jobs), closed loop.
func (r *runner) readArchive(ctx context.Context, t *target, readers int, convs []string, oldest, stored uint64) (*driven, error) {
	base := r.jobBase("history", t, t.urls)
	base.Convs = convs
	base.ArchiveOldest = oldest
	jobs := r.jobs(base, readers, 0)
	for i := range jobs {
		jobs[i].Reads = max(r.cfg.HistoryReads*(jobs[i].To-jobs[i].From)/readers, 1)
	}
	return r.drive(ctx, fmt.Sprintf("history archive at %s stored", commas(int64(stored))), t, jobs, hooks{})
}

// archiveWriter stores messages as the persist worker does (InsertMessages,
// then the blocks they complete), and makes up the other conversations'.
type archiveWriter struct {
	st     *store.Store
	heads  map[string]uint64
	open   map[string][]natter.Message
	prefix string
	body   string
	k      int          // messages made up
	queued int          // messages handed to a writer
	n      atomic.Int64 // messages stored
}

// write stores msgs (each conversation's in seq order, continuing it).
func (w *archiveWriter) write(ctx context.Context, msgs []natter.Message) error {
	for len(msgs) > 0 {
		n := min(archBatch, len(msgs))
		w.queued += n
		if err := w.insert(ctx, msgs[:n], w.cut(msgs[:n])); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// cut adds batch to the open blocks and returns those it completes; the
// caller serialises the calls, in seq order.
func (w *archiveWriter) cut(batch []natter.Message) []store.Block {
	var blocks []store.Block
	for _, m := range batch {
		w.open[m.Conv] = append(w.open[m.Conv], m)
		if m.Seq%store.BlockSize == 0 {
			blocks = append(blocks, store.BlocksOf(m.Conv, w.open[m.Conv])...)
			w.open[m.Conv] = nil
		}
	}
	return blocks
}

func (w *archiveWriter) insert(ctx context.Context, batch []natter.Message, blocks []store.Block) error {
	if _, err := w.st.InsertMessages(ctx, batch); err != nil {
		return fmt.Errorf("history: fill: %w", err)
	}
	if _, err := w.st.InsertBlocks(ctx, blocks); err != nil {
		return fmt.Errorf("history: fill blocks: %w", err)
	}
	w.n.Add(int64(len(batch)))
	return nil
}

// fill stores made-up messages of archFillConvs other conversations until
// the store holds upto (of this run) or deadline passes: two writers, so
// that the store's work and the encoding overlap.
func (w *archiveWriter) fill(ctx context.Context, upto int, deadline time.Time) error {
	var mu sync.Mutex // the made-up messages' heads and open blocks
	next := func() ([]natter.Message, []store.Block) {
		mu.Lock()
		defer mu.Unlock()
		n := min(archBatch, upto-w.queued)
		if n <= 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil
		}
		w.queued += n
		batch := make([]natter.Message, n)
		ts := time.Now().UnixMilli()
		for i := range batch {
			conv := "g_" + w.prefix + "fill" + strconv.Itoa(w.k%archFillConvs)
			w.k++
			w.heads[conv]++
			seq := w.heads[conv]
			batch[i] = natter.Message{ID: "m_" + w.prefix + strconv.Itoa(w.k), Conv: conv, Seq: seq, From: "filler",
				Cmid: "f" + strconv.FormatUint(seq, 10), Type: natter.TypeText, Body: w.body, TS: ts}
		}
		return batch, w.cut(batch)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			for {
				batch, blocks := next()
				if batch == nil {
					return
				}
				if err := w.insert(ctx, batch, blocks); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
