package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/storefiles"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/store"
)

// BenchmarkInsertMessages is the persist worker's insert on the embedded
// store (FerretDB v1, SQLite) as the messages collection grows. Run with
//
//	go test -run '^$' -bench 'InsertMessages' -benchtime 100x -timeout 120m ./workers/store/
//
// or a part of it with the -bench pattern (e.g.
// 'InsertMessages/rows=500k/index=none/sqlite=natter/batch=256/op=insert$').
// Each leaf copies a pre-filled store (built on first use, bounded by
// prefillLimit) and inserts b.N batches of new messages of the pre-fill's
// conversations, so every leaf starts from the same rows:
//
//   - rows: messages already stored (0, 100k, 500k);
//   - index: conv_seq (the unique {conv:1, seq:1} natter created before) or
//     none (only _id's: what Open does on FerretDB/SQLite now);
//   - sqlite: the SQLite URL query: "defaults" (FerretDB's: WAL, synchronous
//     FULL, checkpoints every 1,000 pages, statement journals in temporary
//     files) or "natter" (the embedded store's, sqliteQuery);
//   - batch: messages per call (the persist worker's BatchSize);
//   - op: insert (Store.InsertMessages, what the persist worker calls),
//     insert2 (two InsertMessages at once, as with Concurrency 2), raw
//     (InsertMany of the same documents on the driver's collection) or
//     rawseq (InsertMany of the same documents with sequential _id values,
//     like natter bench's raw InsertMany baseline).
//
// Metrics: docs/s (documents over the time spent in the calls), rows (at the
// start), cpu-us/doc (this process: FerretDB, SQLite and the driver), wB/doc,
// writes/doc and reads/doc (/proc/self/io: bytes passed to write calls, write
// and read calls; the store's files and, a little, the loopback socket).
//
// NATTER_BENCH_PREFILL_DIR keeps the pre-filled stores between runs (they are
// 60-340 MB); NATTER_BENCH_SQLITE adds SQLite variants,
// "name=query;name=query" (a query that sets page_size gets its own
// pre-fill). Benchmarks do not run in go test ./...
func BenchmarkInsertMessages(b *testing.B) {
	root := os.Getenv("NATTER_BENCH_PREFILL_DIR")
	if root == "" {
		root = b.TempDir()
	}
	fills := &prefills{root: root, done: map[string]prefill{}}
	for _, rows := range []int{0, 100_000, 500_000} {
		b.Run("rows="+kilo(rows), func(b *testing.B) {
			for _, index := range []string{"conv_seq", "none"} {
				b.Run("index="+index, func(b *testing.B) {
					for _, sq := range sqliteVariants() {
						b.Run("sqlite="+sq.name, func(b *testing.B) {
							for _, batch := range []int{64, 256, 1000} {
								b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
									for _, op := range []string{"insert", "insert2", "raw", "rawseq"} {
										b.Run("op="+op, func(b *testing.B) {
											benchInsert(b, fills, rows, index, sq.query, batch, op)
										})
									}
								})
							}
						})
					}
				})
			}
		})
	}
}

type sqliteVariant struct{ name, query string }

func sqliteVariants() []sqliteVariant {
	vs := []sqliteVariant{{"defaults", ""}, {"natter", store.SQLiteQuery}}
	for _, kv := range strings.Split(os.Getenv("NATTER_BENCH_SQLITE"), ";") {
		if name, q, ok := strings.Cut(kv, "="); ok {
			vs = append(vs, sqliteVariant{name, q})
		}
	}
	return vs
}

const (
	benchConvs   = 100 // conversations the messages spread over (as natter bench persist: 100 senders)
	benchBodyLen = 128 // body bytes (as the persist soak)
	// prefillLimit bounds one pre-fill; a pre-fill cut short is logged and
	// the leaves report the rows they really started from.
	prefillLimit = 6 * time.Minute
	// prefillQuery makes the pre-fill fast; it does not change what is
	// stored.
	prefillQuery = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(off)&_pragma=cache_size(-262144)"
)

var benchBody = strings.Repeat("lorem ipsum ", benchBodyLen/12+1)[:benchBodyLen]

func kilo(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func benchConv(i int) string {
	sum := sha256.Sum256([]byte("conv" + strconv.Itoa(i)))
	return "d_" + hex.EncodeToString(sum[:16])
}

// benchMsg is message seq of conversation conv as the log would carry it: the
// id is derived from (conv, from, cmid), so ids are in random order.
func benchMsg(conv string, seq uint64) natter.Message {
	cmid := "c" + strconv.FormatUint(seq, 10)
	return natter.Message{ID: msglog.MessageID(conv, "alice", cmid), Conv: conv, Seq: seq, From: "alice", Cmid: cmid,
		Type: natter.TypeText, Body: benchBody, TS: time.Now().UnixMilli()}
}

// msgGen hands out the next messages, round robin over the conversations,
// each continuing its conversation's seq.
type msgGen struct {
	convs []string
	next  []uint64
	k     int
}

func newMsgGen(firstSeq uint64) *msgGen {
	g := &msgGen{convs: make([]string, benchConvs), next: make([]uint64, benchConvs)}
	for i := range g.convs {
		g.convs[i] = benchConv(i)
		g.next[i] = firstSeq
	}
	return g
}

func (g *msgGen) batch(n int) []natter.Message {
	out := make([]natter.Message, n)
	for i := range out {
		c := g.k % len(g.convs)
		g.k++
		out[i] = benchMsg(g.convs[c], g.next[c])
		g.next[c]++
	}
	return out
}

type prefill struct {
	dir  string
	rows int
}

// prefills builds each pre-filled store once per run, on first use.
type prefills struct {
	root string
	mu   sync.Mutex
	done map[string]prefill
}

var pageSizeRe = regexp.MustCompile(`page_size\((\d+)\)`)

func (p *prefills) get(b *testing.B, rows int, index, query string) prefill {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := kilo(rows) + "-" + index
	fillQuery := prefillQuery
	// The page size is fixed when the database file is created: a variant
	// that sets it gets its own pre-fill.
	if m := pageSizeRe.FindStringSubmatch(query); m != nil {
		key += "-page" + m[1]
		fillQuery = "_pragma=page_size(" + m[1] + ")&" + fillQuery
	}
	if f, ok := p.done[key]; ok {
		return f
	}
	f := prefill{dir: filepath.Join(p.root, key)}
	if data, err := os.ReadFile(filepath.Join(f.dir, "rows.txt")); err == nil {
		if f.rows, err = strconv.Atoi(string(data)); err == nil {
			p.done[key] = f
			return f
		}
	}
	if err := os.RemoveAll(f.dir); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	ctx := context.Background()
	emb, st := openBench(b, f.dir, fillQuery, index)
	g := newMsgGen(1)
	for f.rows < rows && time.Since(start) < prefillLimit {
		n := min(1000, rows-f.rows)
		if _, err := st.DB().Collection(store.CollMessages).InsertMany(ctx, docsOf(g.batch(n)), options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatalf("prefill: %v", err)
		}
		f.rows += n
	}
	closeBench(b, emb, st)
	if err := os.WriteFile(filepath.Join(f.dir, "rows.txt"), []byte(strconv.Itoa(f.rows)), 0o644); err != nil {
		b.Fatal(err)
	}
	if f.rows < rows {
		b.Logf("prefill %s cut short at %d rows after %v", key, f.rows, prefillLimit)
	}
	b.Logf("prefill %s: %d rows in %v", key, f.rows, time.Since(start).Round(time.Millisecond))
	p.done[key] = f
	return f
}

func openBench(b *testing.B, dir, query, index string) (*store.Embedded, *store.Store) {
	b.Helper()
	ctx := context.Background()
	emb, err := store.StartEmbeddedQuery(ctx, dir, query, nil)
	if err != nil {
		b.Fatal(err)
	}
	open := store.OpenSeqIndex
	if index == "none" {
		open = store.OpenNoIndexes
	}
	st, err := open(ctx, store.Config{URI: emb.URI()})
	if err != nil {
		_ = emb.Stop(ctx)
		b.Fatal(err)
	}
	return emb, st
}

func closeBench(b *testing.B, emb *store.Embedded, st *store.Store) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = st.Close(ctx)
	if err := emb.Stop(ctx); err != nil {
		b.Fatal(err)
	}
}

func docsOf(msgs []natter.Message) []any {
	docs := make([]any, len(msgs))
	for i := range msgs {
		docs[i] = msgs[i]
	}
	return docs
}

func benchInsert(b *testing.B, fills *prefills, rows int, index, query string, batch int, op string) {
	f := fills.get(b, rows, index, query)
	dir := b.TempDir()
	if f.rows > 0 {
		if err := storefiles.Copy(f.dir, dir, "rows.txt"); err != nil {
			b.Fatal(err)
		}
	}
	emb, st := openBench(b, dir, query, index)
	defer closeBench(b, emb, st)
	ctx := context.Background()
	g := newMsgGen(uint64(f.rows/benchConvs + 1))
	writers := 1
	if op == "insert2" {
		writers = 2
	}
	seqID := 0
	var docs int
	var took time.Duration
	io0, cpu0 := procIO(), procCPU()
	for b.Loop() {
		b.StopTimer()
		batches := make([][]natter.Message, writers)
		for w := range batches {
			batches[w] = g.batch(batch)
			if op == "rawseq" {
				for i := range batches[w] {
					seqID++
					batches[w][i].ID = fmt.Sprintf("b_%09d", seqID)
				}
			}
		}
		b.StartTimer()
		t0 := time.Now()
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range batches {
			wg.Go(func() { errs[w] = insertOp(ctx, st, op, batches[w]) })
		}
		wg.Wait()
		took += time.Since(t0)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		docs += writers * batch
	}
	io1, cpu1 := procIO(), procCPU()
	b.ReportMetric(float64(docs)/took.Seconds(), "docs/s")
	b.ReportMetric(float64(f.rows), "rows")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(docs), "cpu-us/doc")
	if io0 != nil && io1 != nil {
		b.ReportMetric(float64(io1["wchar"]-io0["wchar"])/float64(docs), "wB/doc")
		b.ReportMetric(float64(io1["syscw"]-io0["syscw"])/float64(docs), "writes/doc")
		b.ReportMetric(float64(io1["syscr"]-io0["syscr"])/float64(docs), "reads/doc")
	}
}

// insertOp stores msgs as op does: insert and insert2 (two at once) call
// InsertMessages, raw and rawseq InsertMany on the driver's collection.
func insertOp(ctx context.Context, st *store.Store, op string, msgs []natter.Message) error {
	if op == "insert" || op == "insert2" {
		n, err := st.InsertMessages(ctx, msgs)
		if err == nil && n != len(msgs) {
			err = fmt.Errorf("stored %d of %d", n, len(msgs))
		}
		return err
	}
	_, err := st.DB().Collection(store.CollMessages).InsertMany(ctx, docsOf(msgs), options.InsertMany().SetOrdered(false))
	return err
}

// procIO is this process's /proc/self/io counters (nil where there is none):
// wchar counts the bytes handed to write calls (SQLite's WAL frames and
// checkpoints; FerretDB runs in this process), syscw/syscr the calls.
func procIO() map[string]int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			out[k] = n
		}
	}
	return out
}

// procCPU is the CPU time of this process (the store and the driver).
func procCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
