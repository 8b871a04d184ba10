package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/internal/backup"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store/storetest"
)

// The definitions of these tests: a hot tier of 5 per conversation, so the
// log holds deleted sequences between its messages, as a real one does.
var testStreams = streams.Config{HotTier: 5}

// deployment is an empty natter deployment: an embedded nats-server with
// natter's streams and an embedded FerretDB.
type deployment struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	db   *mongo.Database
	last map[string]uint64 // MSGS: the last seq of each subject written
}

func newDeployment(t testing.TB, apply bool) *deployment {
	return newDeploymentWith(t, apply, testStreams)
}

func newDeploymentWith(t testing.TB, apply bool, defs streams.Config) *deployment {
	t.Helper()
	_, nc, js := testenv.StartJetStream(t)
	emb := storetest.StartEmbedded(t, "")
	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(emb.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	if apply {
		if _, err := streams.Apply(ctx, js, defs); err != nil {
			t.Fatal(err)
		}
	}
	return &deployment{js: js, nc: nc, db: client.Database("natter"), last: map[string]uint64{}}
}

// traffic writes n rounds of data of every kind: log entries in three
// conversations (trimmed to the hot tier), KV updates and deletes, an
// object, events, documents.
func (d *deployment) traffic(t *testing.T, round, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		conv := fmt.Sprintf("c%d", i%3)
		m := &nats.Msg{Subject: subjects.MsgsAll[:len(subjects.MsgsAll)-1] + conv, Header: nats.Header{}, Data: fmt.Appendf(nil, `{"round":%d,"i":%d}`, round, i)}
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("m-%d-%d", round, i))
		m.Header.Set("Natter-Seq", fmt.Sprint(i))
		// As the log appends: compare-and-set on the subject's last
		// sequence, which the replay must not repeat (the hot tier has
		// trimmed what it named).
		ack, err := d.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(d.last[m.Subject]))
		if err != nil {
			t.Fatal(err)
		}
		d.last[m.Subject] = ack.Sequence
		if _, err := d.js.Publish(ctx, subjects.EventsAll[:len(subjects.EventsAll)-1]+"msg."+conv, fmt.Appendf(nil, "ev %d %d", round, i)); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := d.js.KeyValue(ctx, subjects.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := kv.Put(ctx, fmt.Sprintf("u%d.d.c%d", i%4, i%3), fmt.Append(nil, round*1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "u0.d.c0"); err != nil {
		t.Fatal(err)
	}
	obj, err := d.js.ObjectStore(ctx, subjects.ObjectAttach)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, fmt.Sprintf("blob-%d", round), bytes.Repeat([]byte{byte(round)}, 300_000)); err != nil {
		t.Fatal(err)
	}
	var docs []any
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("m_%d_%d", round, i)}, {Key: "seq", Value: i}})
	}
	if _, err := d.db.Collection("messages").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Collection("conversations").UpdateOne(ctx, bson.D{{Key: "_id", Value: "c0"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "round", Value: round}}}}, options.Update().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
}

// ack takes n messages of the PERSIST consumer and acks them.
func (d *deployment) ack(t *testing.T, n int) {
	t.Helper()
	c, err := d.js.Consumer(context.Background(), subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if err := m.DoubleAck(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

type stored struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    string
}

// dump reads every message of stream.
func (d *deployment) dump(t *testing.T, stream string) (jetstream.StreamState, []stored) {
	t.Helper()
	ctx := context.Background()
	s, err := d.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	var out []stored
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("%s seq %d: %v", stream, seq, err)
		}
		h := m.Header
		for k := range h {
			// The original publish's expectations, and what a direct get
			// adds (the time stamp is the replay's).
			if strings.HasPrefix(k, "Nats-Expected-") || k == "Nats-Time-Stamp" || k == "Nats-Sequence" || k == "Nats-Stream" || k == "Nats-Subject" {
				delete(h, k)
			}
		}
		if len(h) == 0 {
			h = nil
		}
		out = append(out, stored{m.Sequence, m.Subject, h, string(m.Data)})
	}
	return st, out
}

func (d *deployment) docs(t *testing.T, coll string) []bson.M {
	t.Helper()
	cur, err := d.db.Collection(coll).Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, d *deployment, target backup.Target, incremental bool) *backup.Manifest {
	t.Helper()
	m, err := backup.Run(context.Background(), backup.Config{JS: d.js, DB: d.db, Target: target, Incremental: incremental, Streams: testStreams, Version: "test"})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return m
}

// TestFullIncrementalRestore: a full backup, more traffic, an incremental
// one, a restore into an empty deployment: every stream holds the same
// messages at the same sequences (deleted ones included), the collections
// the same documents, and the consumers start after their ack floors.
func TestFullIncrementalRestore(t *testing.T) {
	t.Parallel()
	src := newDeployment(t, true)
	src.traffic(t, 1, 40)
	src.ack(t, 10)
	target := backup.Dir(t.TempDir())
	full := run(t, src, target, false)
	src.traffic(t, 2, 30)
	src.ack(t, 7)
	inc := run(t, src, target, true)
	if inc.Kind != backup.KindIncremental || inc.Parent != full.ID {
		t.Fatalf("incremental: kind %s parent %s, want incremental of %s", inc.Kind, inc.Parent, full.ID)
	}
	if ms := findStream(inc, subjects.StreamMsgs); ms.FromSeq != findStream(full, subjects.StreamMsgs).LastSeq+1 || ms.Count != 15 {
		t.Fatalf("incremental MSGS: from %d count %d, want from %d count 15 (the hot tier's)", ms.FromSeq, ms.Count, findStream(full, subjects.StreamMsgs).LastSeq+1)
	}
	// What the source held at the cut, and PERSIST's ack floor.
	cut := map[string][]stored{}
	for _, o := range backup.Streams(testStreams) {
		_, cut[o.Name] = src.dump(t, o.Name)
	}
	cutDocs := map[string][]bson.M{"messages": src.docs(t, "messages"), "conversations": src.docs(t, "conversations")}
	pc, err := src.js.Consumer(context.Background(), subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		t.Fatal(err)
	}
	floor := pc.CachedInfo().AckFloor.Stream
	// Written after the cut: not restored.
	src.traffic(t, 3, 5)

	dst := newDeployment(t, false)
	if _, err := backup.Restore(context.Background(), backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: testStreams}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for _, o := range backup.Streams(testStreams) {
		want := findStream(inc, o.Name)
		st, got := dst.dump(t, o.Name)
		if st.LastSeq != want.LastSeq {
			t.Errorf("%s: restored last seq %d, backed up %d", o.Name, st.LastSeq, want.LastSeq)
		}
		if !reflect.DeepEqual(got, cut[o.Name]) {
			t.Errorf("%s: restored %d messages, want %d; first difference: %s", o.Name, len(got), len(cut[o.Name]), firstDiff(got, cut[o.Name]))
		}
	}
	for c, want := range cutDocs {
		if got := dst.docs(t, c); !reflect.DeepEqual(got, want) {
			t.Errorf("collection %s: %d documents restored, want %d", c, len(got), len(want))
		}
	}
	// PERSIST resumes after the ack floor it had when the backup began.
	c, err := dst.js.Consumer(context.Background(), subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var next uint64
	for _, m := range cut[subjects.StreamMsgs] {
		if m.Seq > floor {
			next = m.Seq
			break
		}
	}
	for m := range b.Messages() {
		if md, _ := m.Metadata(); md.Sequence.Stream != next {
			t.Errorf("restored PERSIST delivers seq %d first, want %d (the first after its floor %d)", md.Sequence.Stream, next, floor)
		}
	}
	// The KV and object store read back through their APIs.
	kv, err := dst.js.KeyValue(context.Background(), subjects.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(context.Background(), "u1.d.c1"); err != nil || string(e.Value()) == "" {
		t.Errorf("restored CURSORS u1.d.c1: %v", err)
	}
	if _, err := kv.Get(context.Background(), "u0.d.c0"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("restored CURSORS u0.d.c0 (deleted): %v, want not found", err)
	}
	obj, err := dst.js.ObjectStore(context.Background(), subjects.ObjectAttach)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := obj.GetBytes(context.Background(), "blob-2"); err != nil || len(b) != 300_000 || b[0] != 2 {
		t.Errorf("restored object blob-2: %d bytes, %v", len(b), err)
	}
	// A new message gets the next sequence.
	_ = inc
	ack, err := dst.js.Publish(context.Background(), subjects.MsgsAll[:len(subjects.MsgsAll)-1]+"c0", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if want := findStream(inc, subjects.StreamMsgs).LastSeq + 1; ack.Sequence != want {
		t.Errorf("new message got seq %d, want %d", ack.Sequence, want)
	}
}

func findStream(m *backup.Manifest, name string) backup.StreamEntry {
	for _, s := range m.Streams {
		if s.Name == name {
			return s
		}
	}
	return backup.StreamEntry{}
}

func firstDiff(got, want []stored) string {
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Sprintf("got %+v, want %+v", got[i], want[i])
		}
	}
	return "lengths differ"
}

// TestRestoreKeepsRepeatedMsgIDs: a message id stored twice (the second
// copy after the duplicate window) is restored twice, with its id, though
// the replay publishes both copies well within the window.
func TestRestoreKeepsRepeatedMsgIDs(t *testing.T) {
	t.Parallel()
	defs := streams.Config{HotTier: 5, DedupWindow: 100 * time.Millisecond}
	src := newDeploymentWith(t, true, defs)
	ctx := context.Background()
	publish := func() *jetstream.PubAck {
		m := &nats.Msg{Subject: "im.msg.c1", Header: nats.Header{}, Data: []byte("same")}
		m.Header.Set(jetstream.MsgIDHeader, "m-same")
		ack, err := src.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	publish()
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if ack := publish(); ack.Duplicate {
			return errors.New("still inside the duplicate window")
		}
		return nil
	})
	target := backup.Dir(t.TempDir())
	m, err := backup.Run(ctx, backup.Config{JS: src.js, DB: src.db, Target: target, Streams: defs})
	if err != nil {
		t.Fatal(err)
	}
	_, want := src.dump(t, subjects.StreamMsgs)
	if len(want) != 2 || findStream(m, subjects.StreamMsgs).Count != 2 {
		t.Fatalf("source holds %d copies, backup %d; want 2", len(want), findStream(m, subjects.StreamMsgs).Count)
	}
	dst := newDeploymentWith(t, false, defs)
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: defs}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, got := dst.dump(t, subjects.StreamMsgs); !reflect.DeepEqual(got, want) {
		t.Errorf("restored %+v, want %+v", got, want)
	}
}

// TestRestoreKVTTLAndMarkers: a bucket with per-key TTLs (PRESENCE's
// leases) and the delete marker the server wrote when one expired are
// restored as they were stored.
func TestRestoreKVTTLAndMarkers(t *testing.T) {
	t.Parallel()
	src := newDeployment(t, true)
	ctx := context.Background()
	kv, err := src.js.KeyValue(ctx, subjects.BucketPresence)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "u1", []byte("lease"), jetstream.KeyTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "u2", []byte("last seen")); err != nil {
		t.Fatal(err)
	}
	name := subjects.KVStream(subjects.BucketPresence)
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, msgs := src.dump(t, name); len(msgs) != 2 || msgs[1].Header.Get("Nats-Marker-Reason") == "" {
			return fmt.Errorf("no expiry marker yet: %+v", msgs)
		}
		return nil
	})
	target := backup.Dir(t.TempDir())
	run(t, src, target, false)
	_, want := src.dump(t, name)
	dst := newDeployment(t, false)
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: testStreams}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, got := dst.dump(t, name); !reflect.DeepEqual(got, want) {
		t.Errorf("restored %+v, want %+v", got, want)
	}
	dkv, err := dst.js.KeyValue(ctx, subjects.BucketPresence)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dkv.Get(ctx, "u1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("restored expired key u1: %v, want not found", err)
	}
	if e, err := dkv.Get(ctx, "u2"); err != nil || string(e.Value()) != "last seen" {
		t.Errorf("restored u2: %v", err)
	}
}

// TestCutAcrossTiers: a conversation created (its document, then its first
// log entry) while the archive is read is restored with both, and a
// message appended and archived after the streams' cut is in neither tier:
// the archive never holds a message the restored log lacks, and the log
// none of a conversation the store lacks.
func TestCutAcrossTiers(t *testing.T) {
	t.Parallel()
	src := newDeployment(t, true)
	src.traffic(t, 1, 10)
	ctx := context.Background()
	create := func(conv string) {
		if _, err := src.db.Collection("conversations").InsertOne(ctx, bson.D{{Key: "_id", Value: conv}}); err != nil {
			t.Fatal(err)
		}
		if _, err := src.js.Publish(ctx, "im.msg."+conv, []byte("first of "+conv)); err != nil {
			t.Fatal(err)
		}
		if _, err := src.db.Collection("messages").InsertOne(ctx, bson.D{{Key: "_id", Value: "m_" + conv}, {Key: "conv", Value: conv}, {Key: "seq", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := backup.WithTestHook(backup.Config{JS: src.js, DB: src.db, Target: backup.Dir(t.TempDir()), Streams: testStreams}, func(step string) {
		switch step {
		case "archived":
			create("c_during")
		case "cut":
			create("c_after")
		}
	})
	if _, err := backup.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	dst := newDeployment(t, false)
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: cfg.Target, Streams: testStreams}); err != nil {
		t.Fatal(err)
	}
	has := func(coll, id string) bool {
		n, err := dst.db.Collection(coll).CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	inLog := func(conv string) bool {
		s, err := dst.js.Stream(ctx, subjects.StreamMsgs)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.GetLastMsgForSubject(ctx, "im.msg."+conv)
		return err == nil
	}
	if !inLog("c_during") || !has("conversations", "c_during") {
		t.Errorf("conversation created during the backup: in the log %v, in the store %v; want both", inLog("c_during"), has("conversations", "c_during"))
	}
	if inLog("c_after") || has("messages", "m_c_after") {
		t.Errorf("message after the cut: in the log %v, in the archive %v; want neither", inLog("c_after"), has("messages", "m_c_after"))
	}
}

// TestRestoreReplicas: a backup of R3 streams (a cluster's) is refused by
// one server as it is, and restored with Replicas 1.
func TestRestoreReplicas(t *testing.T) {
	t.Parallel()
	src := newDeployment(t, true)
	src.traffic(t, 1, 5)
	dir := t.TempDir()
	m := run(t, src, backup.Dir(dir), false)
	// Make it a cluster's backup: every stream at R3.
	path := filepath.Join(dir, m.ID, backup.ManifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(`"num_replicas": 1`), []byte(`"num_replicas": 3`)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dst := newDeployment(t, false)
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: backup.Dir(dir), Streams: testStreams}); err == nil || !strings.Contains(err.Error(), "create stream") {
		t.Fatalf("restore of R3 streams into one server: %v, want an error creating the stream", err)
	}
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: backup.Dir(dir), Streams: testStreams, Replicas: 1, Force: true}); err != nil {
		t.Fatalf("restore with Replicas 1: %v", err)
	}
	if st, _ := dst.dump(t, subjects.StreamMsgs); st.LastSeq != 5 {
		t.Errorf("restored MSGS ends at %d, want 5", st.LastSeq)
	}
}

// TestCoversEveryStream: a backup covers every stream, bucket and object
// store the definitions declare and every stream the server holds after
// they are applied; a stream added to jetstream/streams is covered, or this
// fails.
func TestCoversEveryStream(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, true)
	m := run(t, d, backup.Dir(t.TempDir()), false)
	var got []string
	for _, s := range m.Streams {
		got = append(got, s.Name)
	}
	var onServer []string
	for n := range d.js.StreamNames(context.Background()).Name() {
		onServer = append(onServer, n)
	}
	slices.Sort(got)
	slices.Sort(onServer)
	if !slices.Equal(got, onServer) {
		t.Errorf("backup covers %v, the server holds %v", got, onServer)
	}
	defs := streams.Define(testStreams)
	if want := len(defs.Streams) + len(defs.Buckets) + len(defs.Objects); len(got) != want {
		t.Errorf("backup covers %d streams, the definitions declare %d", len(got), want)
	}
}

// TestVerify: verify passes a good backup chain and names the file of a
// corrupted one, and a chain whose parent is gone.
func TestVerify(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, true)
	d.traffic(t, 1, 20)
	dir := t.TempDir()
	target := backup.Dir(dir)
	full := run(t, d, target, false)
	d.traffic(t, 2, 10)
	inc := run(t, d, target, true)
	rep, err := backup.Verify(context.Background(), target, "", nil)
	if err != nil {
		t.Fatalf("verify good backup: %v", err)
	}
	if len(rep.Chain) != 2 || rep.Messages == 0 || rep.Documents == 0 {
		t.Errorf("verify report %+v", rep)
	}

	file := findStream(inc, subjects.StreamMsgs).File
	path := filepath.Join(dir, filepath.FromSlash(file))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = backup.Verify(context.Background(), target, "", nil)
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), file) {
		t.Errorf("verify corrupted %s: %v, want ErrCorrupt naming the file", file, err)
	}
	// A restore reads the same check.
	dst := newDeployment(t, false)
	if _, err := backup.Restore(context.Background(), backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: testStreams}); !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), file) {
		t.Errorf("restore of corrupted %s: %v, want ErrCorrupt naming the file", file, err)
	}

	if err := os.RemoveAll(filepath.Join(dir, full.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(context.Background(), target, inc.ID, nil); !errors.Is(err, backup.ErrChain) || !strings.Contains(err.Error(), full.ID) {
		t.Errorf("verify without the full backup: %v, want ErrChain naming %s", err, full.ID)
	}
}

// TestRestoreRefusesNonEmpty: a deployment holding messages or documents is
// refused with the reason; --force replaces it.
func TestRestoreRefusesNonEmpty(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, true)
	d.traffic(t, 1, 10)
	target := backup.Dir(t.TempDir())
	run(t, d, target, false)
	d.traffic(t, 2, 10)
	_, err := backup.Restore(context.Background(), backup.RestoreConfig{JS: d.js, DB: d.db, Target: target, Streams: testStreams})
	if !errors.Is(err, backup.ErrNotEmpty) || !strings.Contains(err.Error(), "stream MSGS holds 15 messages") || !strings.Contains(err.Error(), "collection messages") {
		t.Fatalf("restore into a used deployment: %v, want ErrNotEmpty naming MSGS and messages", err)
	}
	if _, err := backup.Restore(context.Background(), backup.RestoreConfig{JS: d.js, DB: d.db, Target: target, Streams: testStreams, Force: true}); err != nil {
		t.Fatalf("restore --force: %v", err)
	}
	if n, _ := d.db.Collection("messages").CountDocuments(context.Background(), bson.D{}); n != 10 {
		t.Errorf("after restore --force: %d messages documents, want the backup's 10", n)
	}
	if st, _ := d.dump(t, subjects.StreamMsgs); st.LastSeq != 10 {
		t.Errorf("after restore --force: MSGS ends at %d, want 10", st.LastSeq)
	}
}

// TestS3Target: backup, verify and restore through an S3 bucket (gofakes3
// in the test process: real HTTP and signatures).
func TestS3Target(t *testing.T) {
	t.Parallel()
	be := s3mem.New()
	if err := be.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	target, err := backup.NewS3(backup.S3Config{Endpoint: srv.URL, Bucket: "backups", Prefix: "natter/", AccessKey: "k", SecretKey: "s", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t, true)
	d.traffic(t, 1, 15)
	run(t, d, target, false)
	d.traffic(t, 2, 5)
	run(t, d, target, true)
	if _, err := backup.Verify(context.Background(), target, "", nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	dst := newDeployment(t, false)
	if _, err := backup.Restore(context.Background(), backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: testStreams}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if st, _ := dst.dump(t, subjects.StreamMsgs); st.LastSeq != 20 {
		t.Errorf("restored MSGS ends at %d, want 20", st.LastSeq)
	}
	if _, err := backup.NewS3(backup.S3Config{Endpoint: "ftp://x", Bucket: "b"}); err == nil {
		t.Error("NewS3 with an ftp endpoint: no error")
	}
}
