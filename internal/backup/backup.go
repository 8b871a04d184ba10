package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// Config of a backup ([Run]).
type Config struct {
	// JS reaches the deployment's JetStream. Required.
	JS jetstream.JetStream
	// DB is the deployment's MongoDB database. Required.
	DB *mongo.Database
	// Target receives the backup. Required.
	Target Target
	// Incremental copies only what the streams received since the newest
	// backup in Target (which must exist). False means a full backup.
	Incremental bool
	// Streams names the definitions whose streams, buckets and object
	// stores are backed up (only the names matter). Zero value: the
	// defaults, which have every name.
	Streams streams.Config
	// Version is recorded in the manifest. Empty means "unknown".
	Version string
	// Progress, when set, is told the items and bytes as they are copied.
	Progress *Progress
	// Logger. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the manifest's times and the backup's id. Nil
	// means time.Now.
	Now func() time.Time

	// testHook, set by tests (export_test.go), runs between the steps of
	// the cut ("archived", "cut").
	testHook func(step string)
}

func (c Config) hook(step string) {
	if c.testHook != nil {
		c.testHook(step)
	}
}

// isArchive reports whether collection name is the archive's: the
// messages the persist role writes from the log.
func isArchive(name string) bool { return name == store.CollMessages || name == store.CollBlocks }

// Owned is one stream natter owns, as [Streams] lists them.
type Owned struct {
	Name string // the stream's name (KV_<bucket>, OBJ_<bucket> for buckets)
	Kind string // StreamKindStream, StreamKindBucket or StreamKindObjects
}

// Streams lists every stream, KV bucket and object store that
// streams.Define(cfg) declares, under their stream names: what a backup
// covers.
func Streams(cfg streams.Config) []Owned {
	defs := streams.Define(cfg)
	var out []Owned
	for _, s := range defs.Streams {
		out = append(out, Owned{s.Name, StreamKindStream})
	}
	for _, b := range defs.Buckets {
		out = append(out, Owned{subjects.KVStream(b.Bucket), StreamKindBucket})
	}
	for _, o := range defs.Objects {
		out = append(out, Owned{subjects.ObjectStream(o.Bucket), StreamKindObjects})
	}
	return out
}

// fetchBatch is how many messages one pull of the backup's ordered
// consumer asks for.
const fetchBatch = 1000

// Run takes a backup and returns its manifest. The order of the cut
// (docs/operations.md, "Backup and restore"): the consumers' ack floors
// first, then the archive's collections, then each stream's last sequence,
// then the other collections; the streams are copied up to those
// sequences. So every message the archive holds is in the streams' part
// (a restore's consumers, PERSIST among them, replay whatever it lacks),
// and every conversation a message of the streams' part belongs to is in
// the collections.
func Run(ctx context.Context, cfg Config) (*Manifest, error) {
	if cfg.JS == nil || cfg.DB == nil || cfg.Target == nil {
		return nil, errors.New("backup: Config.JS, DB and Target are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	m := &Manifest{Format: FormatVersion, Kind: KindFull, Version: cfg.Version, Started: now().UTC(), Database: cfg.DB.Name()}
	if m.Version == "" {
		m.Version = "unknown"
	}
	var parent *Manifest
	if cfg.Incremental {
		id, err := Latest(ctx, cfg.Target)
		if errors.Is(err, ErrNoBackup) {
			return nil, fmt.Errorf("%w in %s to continue (take a full backup first)", ErrNoBackup, cfg.Target)
		}
		if err != nil {
			return nil, err
		}
		if parent, err = ReadManifest(ctx, cfg.Target, id); err != nil {
			return nil, err
		}
		m.Kind, m.Parent = KindIncremental, parent.ID
	}
	m.ID = m.Started.Format("20060102T150405.000Z") + "-" + m.Kind
	log = log.With("backup", m.ID)

	// 1. The streams and their consumers' ack floors.
	owned := Streams(cfg.Streams)
	handles, err := openStreams(ctx, cfg, owned, parent, m)
	if err != nil {
		return nil, err
	}

	// 2. The archive's collections; 3. the cut: each stream's last
	// sequence now; 4. the other collections (every one in full); 5. the
	// streams' messages up to the cut.
	colls, err := cfg.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("backup: list collections: %w", err)
	}
	sort.Strings(colls)
	var archive, state []string
	for _, name := range colls {
		if n, err := cfg.DB.Collection(name).EstimatedDocumentCount(ctx); err == nil {
			cfg.Progress.AddTotal(n)
		}
		if isArchive(name) {
			archive = append(archive, name)
		} else {
			state = append(state, name)
		}
	}
	dump := func(names []string) error {
		for _, name := range names {
			cfg.Progress.Phase("collection " + name)
			ce, err := dumpCollection(ctx, cfg, m.ID, name)
			if err != nil {
				return err
			}
			m.Collections = append(m.Collections, ce)
		}
		return nil
	}
	if err := dump(archive); err != nil {
		return nil, err
	}
	cfg.hook("archived")
	if m.Streams, err = cutStreams(ctx, owned, handles, parent, m.ID); err != nil {
		return nil, err
	}
	cfg.hook("cut")
	if err := dump(state); err != nil {
		return nil, err
	}
	sort.Slice(m.Collections, func(i, j int) bool { return m.Collections[i].Name < m.Collections[j].Name })
	for i := range m.Streams {
		e := &m.Streams[i]
		cfg.Progress.Phase("stream " + e.Name)
		if err := dumpStream(ctx, cfg, handles[e.Name], e); err != nil {
			return nil, err
		}
		log.Debug("stream backed up", "stream", e.Name, "from", e.FromSeq, "last", e.LastSeq, "count", e.Count)
	}

	m.Finished = now().UTC()
	b, err := marshalManifest(m)
	if err != nil {
		return nil, err
	}
	if err := cfg.Target.Put(ctx, path.Join(m.ID, ManifestName), bytesReader(b)); err != nil {
		return nil, err
	}
	cfg.Progress.Finish()
	log.Info("backup written", "kind", m.Kind, "target", cfg.Target.String(), "streams", len(m.Streams), "collections", len(m.Collections))
	return m, nil
}

// openStreams looks up every owned stream, records its durable consumers
// with their ack floors in m and counts its messages to copy.
func openStreams(ctx context.Context, cfg Config, owned []Owned, parent, m *Manifest) (map[string]jetstream.Stream, error) {
	handles := make(map[string]jetstream.Stream, len(owned))
	for _, o := range owned {
		s, err := cfg.JS.Stream(ctx, o.Name)
		if err != nil {
			return nil, fmt.Errorf("backup: stream %s: %w (natter streams apply creates it)", o.Name, err)
		}
		handles[o.Name] = s
		cons, err := durables(ctx, s)
		if err != nil {
			return nil, err
		}
		m.Consumers = append(m.Consumers, cons...)
		from := uint64(1)
		if parent != nil {
			if ps := parent.stream(o.Name); ps != nil {
				from = ps.LastSeq + 1
			}
		}
		if st := s.CachedInfo().State; st.LastSeq >= from {
			cfg.Progress.AddTotal(int64(min(st.Msgs, st.LastSeq-from+1)))
		}
	}
	return handles, nil
}

// cutStreams takes each stream's last sequence: the cut. An incremental
// backup starts each stream its parent had after the parent's cut.
func cutStreams(ctx context.Context, owned []Owned, handles map[string]jetstream.Stream, parent *Manifest, id string) ([]StreamEntry, error) {
	var out []StreamEntry
	for _, o := range owned {
		info, err := handles[o.Name].Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup: stream %s: %w", o.Name, err)
		}
		e := StreamEntry{Name: o.Name, Kind: o.Kind, Config: info.Config, FromSeq: 1,
			FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
			File: path.Join(id, "streams", o.Name+".bin")}
		if parent != nil {
			if ps := parent.stream(o.Name); ps != nil {
				if e.LastSeq < ps.LastSeq {
					return nil, fmt.Errorf("%w: stream %s ends at sequence %d, before its last backup %s (%d): it was recreated; take a full backup", ErrChain, o.Name, e.LastSeq, parent.ID, ps.LastSeq)
				}
				e.FromSeq = ps.LastSeq + 1
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// durables returns the durable consumers of s with their ack floors.
func durables(ctx context.Context, s jetstream.Stream) ([]ConsumerEntry, error) {
	var out []ConsumerEntry
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		out = append(out, ConsumerEntry{Stream: ci.Stream, Config: ci.Config, AckFloor: ci.AckFloor.Stream})
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("backup: consumers of %s: %w", s.CachedInfo().Config.Name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Durable < out[j].Config.Durable })
	return out, nil
}

// putFile streams what fill writes into name on t and returns its size
// and sha256.
func putFile(ctx context.Context, t Target, name string, fill func(w io.Writer) error) (int64, string, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := t.Put(ctx, name, pr)
		pr.CloseWithError(err) // unblocks fill when Put gave up
		done <- err
	}()
	h := sha256.New()
	cw := &countWriter{}
	err := fill(io.MultiWriter(pw, h, cw))
	pw.CloseWithError(err)
	if perr := <-done; err == nil {
		err = perr
	}
	if err != nil {
		return 0, "", fmt.Errorf("backup: %s: %w", name, err)
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func dumpCollection(ctx context.Context, cfg Config, id, name string) (CollectionEntry, error) {
	e := CollectionEntry{Name: name, File: path.Join(id, "mongo", name+".bson")}
	var err error
	e.Bytes, e.SHA256, err = putFile(ctx, cfg.Target, e.File, func(w io.Writer) error {
		cur, err := cfg.DB.Collection(name).Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
		if err != nil {
			return fmt.Errorf("read collection %s: %w", name, err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			if _, err := w.Write(cur.Current); err != nil {
				return err
			}
			e.Count++
			cfg.Progress.Add(1, int64(len(cur.Current)))
		}
		if err := cur.Err(); err != nil {
			return fmt.Errorf("read collection %s: %w", name, err)
		}
		return nil
	})
	return e, err
}

// dumpStream copies e's messages in [max(FromSeq, FirstSeq), LastSeq]
// with an ordered consumer.
func dumpStream(ctx context.Context, cfg Config, s jetstream.Stream, e *StreamEntry) error {
	start := max(e.FromSeq, e.FirstSeq, 1)
	var err error
	e.Bytes, e.SHA256, err = putFile(ctx, cfg.Target, e.File, func(w io.Writer) error {
		rw, err := newRecordWriter(w)
		if err != nil {
			return err
		}
		if start <= e.LastSeq {
			if err := copyMessages(ctx, cfg, s, e, start, rw); err != nil {
				return err
			}
		}
		return rw.flush()
	})
	return err
}

func copyMessages(ctx context.Context, cfg Config, s jetstream.Stream, e *StreamEntry, start uint64, rw *recordWriter) error {
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", e.Name, err)
	}
	for {
		batch, err := c.FetchNoWait(fetchBatch)
		if err != nil {
			return fmt.Errorf("read stream %s: %w", e.Name, err)
		}
		got, more := 0, true
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read stream %s: %w", e.Name, err)
			}
			got++
			seq := meta.Sequence.Stream
			if seq > e.LastSeq {
				more = false
				continue
			}
			r := record{Seq: seq, Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}
			if err := rw.write(&r); err != nil {
				return err
			}
			e.Count++
			cfg.Progress.Add(1, int64(len(r.Data)))
			if seq == e.LastSeq || meta.NumPending == 0 {
				more = false
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read stream %s: %w", e.Name, err)
		}
		if !more || got == 0 {
			return nil
		}
	}
}
