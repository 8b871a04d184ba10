package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// RestoreConfig of a restore ([Restore]).
type RestoreConfig struct {
	// JS reaches the (empty) deployment's JetStream. Required.
	JS jetstream.JetStream
	// DB is its MongoDB database. Required.
	DB *mongo.Database
	// Target holds the backups. Required.
	Target Target
	// ID is the backup to restore (with the chain of backups it continues).
	// Empty means the newest in Target.
	ID string
	// Force replaces what the deployment holds: natter's streams are
	// deleted and the database's collections dropped first. False means a
	// deployment holding any message or document is refused (ErrNotEmpty).
	Force bool
	// Streams names the definitions checked for emptiness (only the names
	// matter). Zero value: the defaults.
	Streams streams.Config
	// Replicas, when above zero, replaces the backed-up replica count of
	// every stream (restoring an R3 cluster's backup into one server, or
	// the reverse). Zero means as backed up.
	Replicas int
	// Progress, when set, is told the items and bytes as they are restored.
	Progress *Progress
	// Logger. Nil means slog.Default().
	Logger *slog.Logger
}

// replayBatch is how many messages restore publishes before it waits for
// their acks (below nats.go's default of 4,000 pending async publishes).
const replayBatch = 2000

// replayDedup is the streams' duplicate window while restore replays into
// them (nats-server's least): a message id met twice in a backup (a copy
// stored after the window) must not be dropped as a duplicate. Restore sets
// the backed-up window again at the end.
const replayDedup = 100 * time.Millisecond

// RestoreReport is what [Restore] did.
type RestoreReport struct {
	// Manifest of the backup restored (the last of its chain).
	Manifest *Manifest
	// Messages replayed into the streams, Placeholders published (and
	// purged) for the sequences of deleted messages, Documents inserted.
	Messages, Placeholders, Documents uint64
	// CollectionsTime and StreamsTime are the time the two tiers took.
	CollectionsTime, StreamsTime time.Duration
}

// Restore restores backup cfg.ID (and the backups it continues) into the
// deployment. The deployment's natter processes
// must be stopped. Every message keeps its stream sequence; the durable
// consumers start after the ack floors they had when the last backup began.
func Restore(ctx context.Context, cfg RestoreConfig) (*RestoreReport, error) {
	if cfg.JS == nil || cfg.DB == nil || cfg.Target == nil {
		return nil, errors.New("backup: RestoreConfig.JS, DB and Target are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	chain, err := Chain(ctx, cfg.Target, cfg.ID)
	if err != nil {
		return nil, err
	}
	last := chain[len(chain)-1]
	log = log.With("backup", last.ID)
	if err := prepare(ctx, cfg, last); err != nil {
		return nil, err
	}
	for _, s := range last.Streams {
		cfg.Progress.AddTotal(int64(s.Count))
	}
	for _, c := range last.Collections {
		cfg.Progress.AddTotal(int64(c.Count))
	}
	rep := &RestoreReport{Manifest: last}
	t0 := time.Now()
	for _, c := range last.Collections {
		cfg.Progress.Phase("collection " + c.Name)
		if err := restoreCollection(ctx, cfg, c); err != nil {
			return nil, err
		}
		rep.Documents += c.Count
	}
	t1 := time.Now()
	rep.CollectionsTime = t1.Sub(t0)
	for _, s := range last.Streams {
		cfg.Progress.Phase("stream " + s.Name)
		n, gaps, err := restoreStream(ctx, cfg, chain, s)
		if err != nil {
			return nil, err
		}
		rep.Messages += n
		rep.Placeholders += gaps
	}
	for _, c := range last.Consumers {
		cc := c.Config
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = jetstream.DeliverAllPolicy, 0, nil
		if c.AckFloor > 0 {
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.AckFloor+1
		}
		if _, err := cfg.JS.CreateConsumer(ctx, c.Stream, cc); err != nil {
			return nil, fmt.Errorf("backup: restore consumer %s/%s: %w", c.Stream, cc.Durable, err)
		}
	}
	rep.StreamsTime = time.Since(t1)
	cfg.Progress.Finish()
	log.Info("backup restored", "chain", len(chain), "streams", len(last.Streams), "collections", len(last.Collections), "consumers", len(last.Consumers),
		"messages", rep.Messages, "placeholders", rep.Placeholders, "documents", rep.Documents)
	return rep, nil
}

// prepare refuses a deployment that holds data (unless Force) and removes
// what is there.
func prepare(ctx context.Context, cfg RestoreConfig, m *Manifest) error {
	names := map[string]bool{}
	for _, o := range Streams(cfg.Streams) {
		names[o.Name] = true
	}
	for _, s := range m.Streams {
		names[s.Name] = true
	}
	var held []string
	var existing []string
	for name := range names {
		s, err := cfg.JS.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("backup: stream %s: %w", name, err)
		}
		existing = append(existing, name)
		if n := s.CachedInfo().State.Msgs; n > 0 {
			held = append(held, fmt.Sprintf("stream %s holds %d messages", name, n))
		}
	}
	colls, err := cfg.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("backup: list collections: %w", err)
	}
	for _, c := range colls {
		n, err := cfg.DB.Collection(c).CountDocuments(ctx, bson.D{}, options.Count().SetLimit(1))
		if err != nil {
			return fmt.Errorf("backup: count collection %s: %w", c, err)
		}
		if n > 0 {
			held = append(held, "collection "+c+" holds documents")
		}
	}
	sort.Strings(held)
	if len(held) > 0 && !cfg.Force {
		return fmt.Errorf("%w: %s (restore --force deletes them first)", ErrNotEmpty, strings.Join(held, ", "))
	}
	for _, name := range existing {
		if err := cfg.JS.DeleteStream(ctx, name); err != nil {
			return fmt.Errorf("backup: delete stream %s: %w", name, err)
		}
	}
	for _, c := range colls {
		if err := cfg.DB.Collection(c).Drop(ctx); err != nil {
			return fmt.Errorf("backup: drop collection %s: %w", c, err)
		}
	}
	return nil
}

func restoreCollection(ctx context.Context, cfg RestoreConfig, c CollectionEntry) error {
	err := cfg.DB.CreateCollection(ctx, c.Name)
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // NamespaceExists
		return fmt.Errorf("backup: create collection %s: %w", c.Name, err)
	}
	f, err := cfg.Target.Open(ctx, c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	hr := newHashReader(f)
	br := bufio.NewReaderSize(hr, 256<<10)
	coll := cfg.DB.Collection(c.Name)
	var docs []any
	size := 0
	var count uint64
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			return fmt.Errorf("backup: restore collection %s: %w", c.Name, err)
		}
		cfg.Progress.Add(int64(len(docs)), int64(size))
		docs, size = docs[:0], 0
		return nil
	}
	for {
		doc, err := readBSON(br)
		if errors.Is(err, errEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, c.File, err)
		}
		docs = append(docs, bson.Raw(doc))
		size += len(doc)
		count++
		if len(docs) >= 1000 || size >= 8<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return checkFile(hr, c.File, c.SHA256, count, c.Count)
}

// checkFile compares a file read to its end with its manifest entry.
func checkFile(hr *hashReader, file, sum string, count, want uint64) error {
	got, err := hr.sum()
	if err != nil {
		return fmt.Errorf("backup: read %s: %w", file, err)
	}
	if got != sum {
		return fmt.Errorf("%w: %s: sha256 %s, manifest says %s", ErrCorrupt, file, got, sum)
	}
	if count != want {
		return fmt.Errorf("%w: %s: %d items, manifest says %d", ErrCorrupt, file, count, want)
	}
	return nil
}

// restoreStream creates stream s and replays its messages from every
// backup of chain that has it, filling deleted sequences with placeholders
// (purged at the end) so that each message gets its original sequence.
func restoreStream(ctx context.Context, cfg RestoreConfig, chain []*Manifest, s StreamEntry) (msgs, gaps uint64, err error) {
	var first *StreamEntry
	for _, m := range chain {
		if first = m.stream(s.Name); first != nil {
			break
		}
	}
	sc := s.Config
	if cfg.Replicas > 0 {
		sc.Replicas = cfg.Replicas
	}
	want := sc
	if start := max(first.FromSeq, first.FirstSeq, 1); start > 1 {
		sc.FirstSeq = start
	}
	sc.Duplicates = replayDedup
	if sc.MaxAge > 0 && sc.MaxAge < replayDedup {
		sc.Duplicates = sc.MaxAge
	}
	if len(sc.Subjects) == 0 {
		return 0, 0, fmt.Errorf("backup: stream %s: no subjects in its backed-up configuration", s.Name)
	}
	stream, cerr := cfg.JS.CreateStream(ctx, sc)
	err = cerr
	if err != nil {
		return 0, 0, fmt.Errorf("backup: create stream %s: %w", s.Name, err)
	}
	r := &replayer{js: cfg.JS, stream: stream, name: s.Name, gap: subjects.BackupGapSubject(sc.Subjects[0]), next: max(sc.FirstSeq, 1), progress: cfg.Progress}
	for _, m := range chain {
		e := m.stream(s.Name)
		if e == nil {
			continue
		}
		if err := r.file(ctx, cfg.Target, e); err != nil {
			return 0, 0, err
		}
	}
	// Sequences deleted at the end of the stream are taken too: the next
	// message gets the sequence it would have had.
	for r.next <= s.LastSeq {
		if err := r.add(ctx, r.placeholder(), r.next); err != nil {
			return 0, 0, err
		}
	}
	if err := r.flush(ctx); err != nil {
		return 0, 0, err
	}
	if r.gaps > 0 {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(r.gap)); err != nil {
			return 0, 0, fmt.Errorf("backup: stream %s: purge placeholders: %w", s.Name, err)
		}
	}
	want.FirstSeq = sc.FirstSeq
	if _, err := cfg.JS.UpdateStream(ctx, want); err != nil {
		return 0, 0, fmt.Errorf("backup: stream %s: set its configuration back: %w", s.Name, err)
	}
	return r.msgs, uint64(r.gaps), nil
}

// replayer publishes a stream's messages in order, each expecting the
// sequence before its own.
type replayer struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	name     string
	gap      string
	next     uint64 // the sequence the next message must get
	batch    []*nats.Msg
	first    uint64 // sequence of batch[0]
	gaps     int
	msgs     uint64
	dups     int // messages published again after the duplicate window
	progress *Progress
}

func (r *replayer) placeholder() *nats.Msg {
	r.gaps++
	return &nats.Msg{Subject: r.gap, Header: nats.Header{}}
}

// file replays one backup file of the stream.
func (r *replayer) file(ctx context.Context, t Target, e *StreamEntry) error {
	f, err := t.Open(ctx, e.File)
	if err != nil {
		return err
	}
	defer f.Close()
	hr := newHashReader(f)
	rr, err := newRecordReader(hr)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, e.File, err)
	}
	var count uint64
	for {
		rec, err := rr.next()
		if errors.Is(err, errEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, e.File, err)
		}
		if rec.Seq < r.next || rec.Seq < e.FromSeq || rec.Seq > e.LastSeq {
			return fmt.Errorf("%w: %s: sequence %d out of order (want %d..%d, from %d)", ErrCorrupt, e.File, rec.Seq, r.next, e.LastSeq, e.FromSeq)
		}
		count++
		for r.next < rec.Seq {
			if err := r.add(ctx, r.placeholder(), r.next); err != nil {
				return err
			}
		}
		msg := &nats.Msg{Subject: rec.Subject, Header: rec.Header, Data: rec.Data}
		if msg.Header == nil {
			msg.Header = nats.Header{}
		}
		for k := range msg.Header {
			// The expectations of the original publish (compare-and-set)
			// were met then; the replay sets its own.
			if strings.HasPrefix(k, "Nats-Expected-") {
				delete(msg.Header, k)
			}
		}
		if err := r.add(ctx, msg, rec.Seq); err != nil {
			return err
		}
		r.msgs++
		r.progress.Add(1, int64(len(rec.Data)))
	}
	return checkFile(hr, e.File, e.SHA256, count, e.Count)
}

func (r *replayer) add(ctx context.Context, msg *nats.Msg, seq uint64) error {
	if len(r.batch) == 0 {
		r.first = seq
	}
	msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(seq-1, 10))
	r.batch = append(r.batch, msg)
	r.next = seq + 1
	if len(r.batch) >= replayBatch {
		return r.flush(ctx)
	}
	return nil
}

// flush publishes the batch and waits for the acks. After a failure it
// reads where the stream is and publishes again from there; a message
// dropped as a duplicate (its id met again inside the replay's window) goes
// again once the window has passed.
func (r *replayer) flush(ctx context.Context) error {
	i, stuck := 0, 0
	for i < len(r.batch) {
		if stuck >= 3 {
			return fmt.Errorf("%w: stream %s: sequence %d: no progress after %d attempts", ErrSequence, r.name, r.first+uint64(i), stuck)
		}
		futs := make([]jetstream.PubAckFuture, 0, len(r.batch)-i)
		var perr error
		for _, msg := range r.batch[i:] {
			f, err := r.js.PublishMsgAsync(msg)
			if err != nil {
				perr = err
				break
			}
			futs = append(futs, f)
		}
		bad, dup := -1, false
		var badErr error
		for j, f := range futs {
			select {
			case ack := <-f.Ok():
				if bad < 0 && (ack.Duplicate || ack.Sequence != r.first+uint64(i+j)) {
					bad, dup = j, ack.Duplicate
					badErr = fmt.Errorf("stored at %d (duplicate %v)", ack.Sequence, ack.Duplicate)
				}
			case err := <-f.Err():
				if bad < 0 {
					bad, badErr = j, err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if bad < 0 && perr == nil {
			break
		}
		if bad < 0 {
			bad, badErr = len(futs), perr
		}
		info, err := r.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("backup: stream %s: %w", r.name, err)
		}
		at := info.State.LastSeq + 1
		if at < r.first+uint64(i) || at > r.first+uint64(len(r.batch)) {
			return fmt.Errorf("%w: stream %s is at %d, replay at %d: %v", ErrSequence, r.name, info.State.LastSeq, r.first+uint64(i+bad), badErr)
		}
		k := int(at - r.first)
		stuck++
		if k > i {
			stuck = 0
		}
		if dup && k == i+bad {
			// Its id was stored within the replay's window (the original
			// stored the copy after its own): wait the window out and
			// publish it again, id and all.
			r.dups++
			select {
			case <-time.After(2 * replayDedup):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		i = k
	}
	r.batch = r.batch[:0]
	return nil
}

// errEOF is io.EOF (named so the readers' loops read plainly).
var errEOF = io.EOF
