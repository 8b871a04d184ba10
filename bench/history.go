package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// filler appends log entries to conversations in bulk: asynchronous
// publishes that carry the same payload and headers msglog.Append writes
// (seq, block anchors and back window), without its per-message
// compare-and-set round trips. It must be the only writer of the stream while it runs: it
// predicts each entry's stream sequence and checks every ack against it.
type filler struct {
	js    jetstream.JetStream
	convs []string
	from  string
	size  int
	next  uint64 // stream seq of the next entry
	heads []fillHead
	k     int // entries appended
	// progress is k for the progress line, updated every 4,096 entries.
	progress atomic.Int64
	// keep, when set, is called with each message appended (the archive
	// mode stores them too).
	keep func(natter.Message)
}

// stored is about how many entries the filler has appended.
func (f *filler) stored() int64 { return f.progress.Load() }

type fillHead struct {
	seq, blk, pblk uint64
	stream         uint64 // stream seq of the conversation's newest entry
	prev           string // its back window (msglog.HeaderPrev)
}

func newFiller(ctx context.Context, js jetstream.JetStream, convs []string, from string, size int) (*filler, error) {
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, fmt.Errorf("history: stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("history: stream: %w", err)
	}
	f := &filler{js: js, convs: convs, from: from, size: size, next: info.State.LastSeq + 1, heads: make([]fillHead, len(convs))}
	for i, c := range convs {
		raw, err := st.GetLastMsgForSubject(ctx, subjects.Msg(c))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("history: head of %s: %w", c, err)
		}
		seq, _ := strconv.ParseUint(raw.Header.Get(msglog.HeaderSeq), 10, 64)
		blk, _ := strconv.ParseUint(raw.Header.Get(msglog.HeaderBlk), 10, 64)
		pblk, _ := strconv.ParseUint(raw.Header.Get(msglog.HeaderPBlk), 10, 64)
		if blk == 0 {
			blk = raw.Sequence
		}
		f.heads[i] = fillHead{seq, blk, pblk, raw.Sequence, raw.Header.Get(msglog.HeaderPrev)}
	}
	return f, nil
}

// fill appends entries round robin over the conversations until the
// stream holds total entries or deadline passes; it returns how many
// entries it appended.
func (f *filler) fill(ctx context.Context, upto int, deadline time.Time) (int, error) {
	type pending struct {
		fut  jetstream.PubAckFuture
		want uint64
	}
	futs := make(chan pending, 8192)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var first error
		for p := range futs {
			select {
			case ack := <-p.fut.Ok():
				if ack.Sequence != p.want && first == nil {
					first = fmt.Errorf("history: fill: entry stored at stream seq %d, expected %d: another writer is active", ack.Sequence, p.want)
				}
			case err := <-p.fut.Err():
				if first == nil {
					first = fmt.Errorf("history: fill: %w", err)
				}
			}
		}
		errc <- first
	}()
	pad := make([]byte, max(f.size-20, 1))
	for i := range pad {
		pad[i] = 'x'
	}
	start := f.k
	var err error
	for ; f.k < upto; f.k++ {
		if f.k%4096 == 0 {
			f.progress.Store(int64(f.k))
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
		}
		ci := f.k % len(f.convs)
		h := &f.heads[ci]
		conv := f.convs[ci]
		seq := h.seq + 1
		blk, pblk := h.blk, h.pblk
		if (seq-1)%msglog.BlockSize == 0 {
			blk, pblk = 0, h.blk
		}
		cmid := "fill" + strconv.Itoa(f.k)
		m := natter.Message{ID: msglog.MessageID(conv, f.from, cmid), Conv: conv, Seq: seq, From: f.from, Cmid: cmid,
			Type: msglog.DefaultType, Body: string(pad), TS: time.Now().UnixMilli()}
		data, _ := json.Marshal(m)
		if f.keep != nil {
			f.keep(m)
		}
		msg := &nats.Msg{Subject: subjects.Msg(conv), Data: data, Header: nats.Header{}}
		msg.Header.Set(msglog.HeaderSeq, strconv.FormatUint(seq, 10))
		msg.Header.Set(msglog.HeaderBlk, strconv.FormatUint(blk, 10))
		msg.Header.Set(msglog.HeaderPBlk, strconv.FormatUint(pblk, 10))
		prev := msglog.NextWindow(h.prev, h.stream)
		if prev != "" {
			msg.Header.Set(msglog.HeaderPrev, prev)
		}
		// At the in-flight limit a publish waits for room rather than
		// failing after the default 200 ms on a loaded machine.
		fut, perr := f.js.PublishMsgAsync(msg, jetstream.WithStallWait(10*time.Second))
		if perr != nil {
			err = fmt.Errorf("history: fill: %w", perr)
			break
		}
		futs <- pending{fut, f.next}
		if blk == 0 {
			blk = f.next
		}
		*h = fillHead{seq, blk, pblk, f.next, prev}
		f.next++
	}
	close(futs)
	wg.Wait()
	f.progress.Store(int64(f.k))
	return f.k - start, errors.Join(err, <-errc)
}

// history measures the newest-page latency with each of --history-sizes
// messages in the stream, spread round robin over --history-convs
// conversations of one user.
func (r *runner) history(ctx context.Context) ([]*Result, error) {
	if r.cfg.HistoryMode == HistoryArchive {
		return r.historyArchive(ctx)
	}
	sizes := r.cfg.HistorySizes
	// Only the conversations service runs: the fill is for the reads, it
	// would otherwise keep the persist and fan-out workers busy for minutes.
	t, err := startTarget(ctx, &r.cfg, targetOpts{roles: []string{node.RoleConversations}})
	if err != nil {
		return nil, err
	}
	defer t.close()
	if t.js == nil {
		return nil, errors.New("history: the fill needs NATS: give --nats-url")
	}
	readers := r.cfg.conns("history")
	spec := clientSpec{urls: t.urls, key: t.key, aud: t.aud, iss: t.iss}
	user := historyUser(r.prefix)
	admin, err := spec.dial(ctx, user, t.urls[:1], 0)
	if err != nil {
		return nil, fmt.Errorf("history: dial: %w", err)
	}
	defer admin.Close()
	discard(admin)
	convs := make([]string, r.cfg.HistoryConvs)
	for i := range convs {
		conv, err := admin.CreateGroup(ctx, fmt.Sprintf("history %d", i))
		if err != nil {
			return nil, fmt.Errorf("history: create conversation: %w", err)
		}
		convs[i] = conv.ID
	}
	f, err := newFiller(ctx, t.js, convs, user, r.cfg.Size)
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: "history", Name: "history newest-50 page", Target: t.name(), Conns: readers, Size: r.cfg.Size, Procs: r.cfg.Procs,
		PersistPending: -1, Unit: "pages/s"}
	deadline := time.Now().Add(r.cfg.FillTimeout)
	var total float64
	var cpu *CPU
	for _, size := range sizes {
		t0 := time.Now()
		stop := r.ticker("history fill", func() string { return fmt.Sprintf("stored %s of %s", commas(int64(f.stored())), commas(int64(size))) })
		n, err := f.fill(ctx, int(size), deadline)
		stop()
		took := time.Since(t0)
		if err != nil {
			return nil, err
		}
		if uint64(f.k) < size {
			res.note("fill reached %s of %s messages within --fill-timeout %v: measured at %s (scaled down)", commas(int64(f.k)), commas(int64(size)), r.cfg.FillTimeout, commas(int64(f.k)))
		}
		if n > 0 {
			res.note("filled %s entries in %.1f s (%s/s, bulk asynchronous publish of log entries)", commas(int64(n)), took.Seconds(), fnum(float64(n)/took.Seconds()))
		}
		d, err := r.readPages(ctx, t, readers, convs, uint64(f.k))
		if err != nil {
			return nil, err
		}
		hp := HistoryPoint{Page: "newest-50", Stored: uint64(f.k), Convs: len(convs), PerConv: uint64(f.k / len(convs)), FillSeconds: round3(took.Seconds()),
			Reads: d.delivered, Latency: d.lat.latency()}
		total += d.seconds()
		cpu = res.addHistoryPoint(hp, d, cpu)
		if uint64(f.k) < size {
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
	res.note("reads by %d connections of one user, closed loop, a random conversation each; CPU is per page read", readers)
	res.historyTargets("newest 50-message page", "", 5)
	return []*Result{res}, nil
}

// historyTargets checks the history targets on res.History (one point per
// stored size, smallest first): the largest size's p99 within limitMs, and
// its p99 within 1.2x the smallest's. what names the page, prefix the
// ratio's p99s ("archive " or "").
func (res *Result) historyTargets(what, prefix string, limitMs float64) {
	if len(res.History) == 0 {
		return
	}
	last := res.History[len(res.History)-1]
	res.Latency = last.Latency
	if last.Latency != nil {
		res.check(fmt.Sprintf("history: %s p99 <= %g ms", what, limitMs), fmt.Sprintf("%s ms with %s stored", fnum(last.Latency.P99), commas(int64(last.Stored))), last.Latency.P99 <= limitMs, last.Stored < 1_000_000)
	}
	first := res.History[0]
	if len(res.History) > 1 && first.Latency != nil && last.Latency != nil {
		v := last.Latency.P99 / first.Latency.P99
		res.ratio(fmt.Sprintf("%sp99 at %s / p99 at %s stored", prefix, commas(int64(last.Stored)), commas(int64(first.Stored))), last.Latency.P99, first.Latency.P99)
		res.check(fmt.Sprintf("history: %sp99 at 1,000,000 stored <= 1.2x p99 at 10,000", prefix), fmt.Sprintf("%.2fx (%s ms / %s ms)", v, fnum(last.Latency.P99), fnum(first.Latency.P99)),
			v <= 1.2, first.Stored != 10_000 || last.Stored < 1_000_000)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// readPages reads HistoryReads newest pages with readers connections
// (generator jobs), closed loop.
func (r *runner) readPages(ctx context.Context, t *target, readers int, convs []string, stored uint64) (*driven, error) {
	base := r.jobBase("history", t, t.urls)
	base.Convs = convs
	jobs := r.jobs(base, readers, 0)
	for i := range jobs {
		jobs[i].Reads = max(r.cfg.HistoryReads*(jobs[i].To-jobs[i].From)/readers, 1)
	}
	return r.drive(ctx, fmt.Sprintf("history at %s stored", commas(int64(stored))), t, jobs, hooks{})
}

// addCPU sums b into a (nil: none yet); fill recomputes the rates.
// addHistoryPoint adds the reads d made at one stored size to res: their
// counts, hp with its CPU per page, and d's first error; it returns cpu
// with d's added.
func (res *Result) addHistoryPoint(hp HistoryPoint, d *driven, cpu *CPU) *CPU {
	res.Sent += d.sent
	res.Delivered += d.delivered
	res.Errors += d.errors
	res.Connected = d.connected
	pc := d.cpu("page", float64(d.delivered))
	hp.ServerUsPerPage, hp.GeneratorUsPerPage = pc.ServerUsPerMsg, pc.GeneratorUsPerMsg
	res.History = append(res.History, hp)
	if d.firstErr != "" {
		res.note("first error: %s", d.firstErr)
	}
	return addCPU(cpu, pc)
}

func addCPU(a, b *CPU) *CPU {
	if a == nil {
		return b
	}
	a.ServerUs += b.ServerUs
	a.GeneratorUs += b.GeneratorUs
	a.Count += b.Count
	a.Split = a.Split && b.Split
	if !b.known() {
		a.Server = ""
	}
	return a
}
