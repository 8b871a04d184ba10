package convsvc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/storefiles"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/store"
)

// BenchmarkHistoryArchive is a page of archived history read through the
// conversations service (what the edge asks when the hot tier no longer
// holds the page): one conversation of archConvMsgs messages among other
// conversations' messages, stored messages in all, on the embedded store.
// Every conversation's blocks are stored, as the persist worker writes
// them. Each read is a 200-message page at a random place: history before
// a seq, or a sync page (after a seq, before the hot tier's oldest). Run
// with
//
//	go test -run '^$' -bench HistoryArchive -benchtime 1x -timeout 60m ./workers/convsvc/
//
// mode=blocks is natter's read (store.ArchiveRange); mode=scan is the read
// from the messages collection it replaced (store.MessagesBefore /
// MessagesRange, a scan of every stored message on the embedded store),
// measured at 10,000 stored only. NATTER_BENCH_PREFILL_DIR keeps the
// pre-filled stores between runs (1,000,000 takes minutes to build).
func BenchmarkHistoryArchive(b *testing.B) {
	root := os.Getenv("NATTER_BENCH_PREFILL_DIR")
	if root == "" {
		root = b.TempDir()
	}
	for _, stored := range []int{10_000, 1_000_000} {
		for _, mode := range []string{"blocks", "scan"} {
			if mode == "scan" && stored > 10_000 {
				continue
			}
			b.Run(fmt.Sprintf("stored=%dk/mode=%s", stored/1000, mode), func(b *testing.B) {
				benchArchive(b, root, stored, mode)
			})
		}
	}
}

const (
	archConv      = "g_archbench"
	archConvMsgs  = 5_000
	archOthers    = 100 // other conversations
	archBody      = 100
	archPage      = 200
	archHot       = 100 // the hot tier the sync pages stop at
	archFillLimit = 15 * time.Minute
)

func benchArchive(b *testing.B, root string, stored int, mode string) {
	ctx := context.Background()
	tmpl, n := archPrefill(b, root, stored)
	dir := b.TempDir()
	if err := storefiles.Copy(tmpl, dir, "rows.txt"); err != nil {
		b.Fatal(err)
	}
	emb, err := store.StartEmbedded(ctx, dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = emb.Stop(context.Background()) }()
	st, err := store.Open(ctx, store.Config{URI: emb.URI()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	srv, err := natsembed.Start(natsembed.Config{Port: -1, StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	svcConn, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer svcConn.Close()
	svc, err := convsvc.Start(svcConn, st, convsvc.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	cl := convapi.NewClient(nc, 5*time.Minute)

	reads := 400
	if mode == "scan" {
		reads = 20
	}
	// The hot tier holds the newest archHot; pages come from below it.
	oldest := uint64(archConvMsgs - archHot + 1)
	rng := rand.New(rand.NewPCG(1, uint64(stored)))
	read := func(i int) (int, error) {
		if i%2 == 0 {
			before := archPage + 1 + rng.Uint64N(oldest-archPage)
			if mode == "scan" {
				msgs, err := st.MessagesBefore(ctx, archConv, before, archPage+1)
				return len(msgs), err
			}
			page, err := cl.History(ctx, convapi.HistoryRequest{User: "alice", Conv: archConv, Before: before, Limit: archPage})
			return len(page.Msgs), err
		}
		after := rng.Uint64N(oldest - archPage)
		if mode == "scan" {
			msgs, err := st.MessagesRange(ctx, archConv, after+1, oldest-1, archPage+1)
			return len(msgs), err
		}
		page, err := cl.History(ctx, convapi.HistoryRequest{User: "alice", Conv: archConv, After: &after, Before: oldest, Limit: archPage})
		return len(page.Msgs), err
	}
	// Warm: the membership cache, the connections.
	if _, err := read(0); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	cpu0 := procCPU()
	for b.Loop() {
		lat = lat[:0]
		for i := range reads {
			t0 := time.Now()
			got, err := read(i)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			if mode == "blocks" && got != archPage {
				b.Fatalf("page of %d messages, want %d", got, archPage)
			}
		}
	}
	cpu := procCPU() - cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/page")
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(n), "stored")
	b.ReportMetric(0, "ns/op")
}

// procCPU is the CPU time of this process: the store, NATS, the service and
// the reader.
func procCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// archPrefill builds (once per root) a store of stored messages: archConv's
// archConvMsgs and the rest over archOthers conversations, interleaved, with
// every complete block, by InsertMany straight into the store.
func archPrefill(b *testing.B, root string, stored int) (string, int) {
	dir := filepath.Join(root, "archive-"+strconv.Itoa(stored))
	if data, err := os.ReadFile(filepath.Join(dir, "rows.txt")); err == nil {
		if n, err := strconv.Atoi(string(data)); err == nil {
			return dir, n
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	emb, err := store.StartEmbedded(ctx, dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{URI: emb.URI()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateConversation(ctx, natter.Conversation{ID: archConv, Kind: natter.KindGroup, Name: "bench", CreatedBy: "alice",
		CreatedAt: time.Now().UnixMilli(), Members: []string{"alice", "bob"}}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	body := strings.Repeat("x", archBody)
	heads := map[string]uint64{}
	open := map[string][]natter.Message{}
	// One message of archConv every stored/archConvMsgs, so that it is
	// spread over the whole store.
	every := max(stored/archConvMsgs, 1)
	n := 0
	for n < stored && time.Since(start) < archFillLimit {
		batch := make([]natter.Message, min(1000, stored-n))
		var blocks []store.Block
		for i := range batch {
			conv := archConv
			if (n+i)%every != 0 || heads[archConv] >= archConvMsgs {
				conv = "g_archfill_" + strconv.Itoa((n+i)%archOthers)
			}
			heads[conv]++
			seq := heads[conv]
			cmid := "c" + strconv.FormatUint(seq, 10)
			batch[i] = natter.Message{ID: fmt.Sprintf("m_%s_%d", conv, seq), Conv: conv, Seq: seq, From: "alice", Cmid: cmid,
				Type: natter.TypeText, Body: body, TS: time.Now().UnixMilli()}
			open[conv] = append(open[conv], batch[i])
			if len(open[conv]) == store.BlockSize {
				blocks = append(blocks, store.Block{Conv: conv, K: store.BlockOf(seq), Msgs: open[conv]})
				open[conv] = nil
			}
		}
		if _, err := st.InsertMessages(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if _, err := st.InsertBlocks(ctx, blocks); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	if heads[archConv] < archConvMsgs {
		b.Fatalf("prefill: %s has %d messages after %v", archConv, heads[archConv], time.Since(start))
	}
	_ = st.Close(ctx)
	if err := emb.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("prefill %s: %d messages in %v", dir, n, time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(dir, "rows.txt"), []byte(strconv.Itoa(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, n
}
