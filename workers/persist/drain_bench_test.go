package persist_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/storefiles"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// BenchmarkPersistDrain is the persist worker draining a backlog: drainMsgs
// log entries (appended beforehand with msglog.Append, as the edge does, so
// their IDEM records exist) over drainConvs conversations, into an embedded
// store that already holds rows messages; msgs/s from the runner's start
// until the PERSIST consumer has nothing pending or unacked. Run with
//
//	go test -run '^$' -bench PersistDrain -benchtime 1x -timeout 60m ./workers/persist/
//
// The dimensions:
//
//   - handler: persist (the real handler: decode, InsertMessages, IDEM
//     records), store (decode and InsertMessages only, to split the cost) or
//     idemonce (store, then the IDEM creates of the batch in one asynchronous
//     round trip, taking "wrong last sequence" as "the record exists"
//     instead of msglog.EnsureIdemBatch's per-message synchronous retry; a
//     measurement of that change, not natter's code);
//   - batch, conc: the runner's BatchSize and Concurrency.
//
// cpu-us/msg and cores are this process's CPU (NATS, FerretDB, the worker).
// NATTER_BENCH_PREFILL_DIR keeps the pre-filled stores between runs.
func BenchmarkPersistDrain(b *testing.B) {
	root := os.Getenv("NATTER_BENCH_PREFILL_DIR")
	if root == "" {
		root = b.TempDir()
	}
	for _, rows := range []int{0, 300_000} {
		b.Run("rows="+kilo(rows), func(b *testing.B) {
			for _, handler := range []string{"persist", "store", "idemonce"} {
				b.Run("handler="+handler, func(b *testing.B) {
					for _, batch := range []int{64, 256, 1000} {
						b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
							for _, conc := range []int{1, 2, 4, 8} {
								b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
									benchDrain(b, root, rows, handler, batch, conc)
								})
							}
						})
					}
				})
			}
		})
	}
}

const (
	drainMsgs    = 20_000
	drainConvs   = 100 // as natter bench persist: 100 senders
	drainBody    = 128
	prefillLimit = 6 * time.Minute
)

func kilo(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func benchDrain(b *testing.B, root string, rows int, handler string, batch, conc int) {
	ctx := context.Background()
	storeDir := b.TempDir()
	have := 0
	if rows > 0 {
		tmpl, n := drainPrefill(b, root, rows)
		if err := storefiles.Copy(tmpl, storeDir, "rows.txt"); err != nil {
			b.Fatal(err)
		}
		have = n
	}
	st := storetest.Open(b, store.Config{URI: storetest.StartEmbedded(b, storeDir).URI()})

	for b.Loop() {
		b.StopTimer()
		ns, err := natsembed.Start(natsembed.Config{Port: -1, StoreDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if _, err := streams.Apply(ctx, js, streams.Config{AckWait: 30 * time.Second, MaxDeliver: 5}); err != nil {
			b.Fatal(err)
		}
		l, err := msglog.New(ctx, nc, js, msglog.Config{})
		if err != nil {
			b.Fatal(err)
		}
		appendBacklog(b, l, strconv.Itoa(have))

		var h runner.Handler = persist.New(st, l, nil)
		switch handler {
		case "store":
			h = storeOnly(st, nil)
		case "idemonce":
			h = storeOnly(st, js)
		}
		r, err := runner.New(js, runner.Config{Role: "persist", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist,
			BatchSize: batch, Concurrency: conc}, h)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), procCPU()
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		waitDrained(b, js)
		took, cpu := time.Since(start), procCPU()-cpu0
		b.StopTimer()
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		if s := r.Stats(); s.Acked != drainMsgs || s.Retried != 0 || s.Poisoned != 0 {
			b.Fatalf("runner stats %+v, want %d acked and nothing else", s, drainMsgs)
		}
		have += drainMsgs
		nc.Close()
		ns.Stop()
		b.ReportMetric(drainMsgs/took.Seconds(), "msgs/s")
		b.ReportMetric(float64(cpu.Microseconds())/drainMsgs, "cpu-us/msg")
		b.ReportMetric(cpu.Seconds()/took.Seconds(), "cores")
		b.StartTimer()
	}
	b.StopTimer()
	n, err := st.CountMessages(ctx, "")
	if err != nil || n != int64(have) {
		b.Fatalf("store holds %d (%v), want %d", n, err, have)
	}
	b.ReportMetric(float64(rows), "rows")
}

// appendBacklog appends drainMsgs messages round robin over drainConvs
// conversations named after tag (so each run's are new), 8 at a time.
func appendBacklog(b *testing.B, l *msglog.Log, tag string) {
	body := strings.Repeat("x", drainBody)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < drainMsgs; i += 8 {
				conv := fmt.Sprintf("d_drain%s_%d", tag, i%drainConvs)
				if _, err := l.Append(context.Background(), msglog.Send{Conv: conv, From: "alice", Cmid: "c" + strconv.Itoa(i), Body: body}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitDrained polls the PERSIST consumer until nothing is pending or unacked.
func waitDrained(b *testing.B, js jetstream.JetStream) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("backlog not drained in 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storeOnly is the persist handler without the IDEM records: decode and one
// InsertMessages per batch; with js, then the IDEM creates in one
// asynchronous round trip, an existing record counting as done.
func storeOnly(st *store.Store, js jetstream.JetStream) runner.Handler {
	return runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		batch := make([]natter.Message, 0, len(msgs))
		for _, m := range msgs {
			dm, err := msglog.Decode(m.Data(), m.Headers())
			if err != nil {
				return runner.All(len(msgs), runner.Result{Outcome: runner.Poison, Reason: err.Error()})
			}
			batch = append(batch, dm)
		}
		if _, err := st.InsertMessages(ctx, batch); err != nil {
			return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: err.Error()})
		}
		if js != nil {
			if err := idemOnce(js, batch); err != nil {
				return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: err.Error()})
			}
		}
		return runner.All(len(msgs), runner.Result{Outcome: runner.Ack})
	})
}

func idemOnce(js jetstream.JetStream, batch []natter.Message) error {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, m := range batch {
		data, err := json.Marshal(natter.Ack{ID: m.ID, Conv: m.Conv, Seq: m.Seq, TS: m.TS})
		if err != nil {
			return err
		}
		msg := nats.NewMsg("$KV." + subjects.BucketIdem + "." + m.ID)
		msg.Data = data
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		if futures[i], err = js.PublishMsgAsync(msg); err != nil {
			return err
		}
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			var jerr jetstream.JetStreamError
			if !errors.As(err, &jerr) || jerr.APIError() == nil || jerr.APIError().ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				return err
			}
		case <-time.After(30 * time.Second):
			return errors.New("idem publish: no ack in 30s")
		}
	}
	return nil
}

// drainPrefill builds (once, kept under root) a store holding rows messages
// of other conversations, written by InsertMessages in batches of 1000,
// bounded by prefillLimit; it returns its directory and row count.
func drainPrefill(b *testing.B, root string, rows int) (string, int) {
	dir := filepath.Join(root, "persist-"+kilo(rows))
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
	start := time.Now()
	body := strings.Repeat("x", drainBody)
	n := 0
	for n < rows && time.Since(start) < prefillLimit {
		batch := make([]natter.Message, min(1000, rows-n))
		for i := range batch {
			conv := "d_fill_" + strconv.Itoa((n+i)%drainConvs)
			seq := uint64((n+i)/drainConvs + 1)
			cmid := "c" + strconv.FormatUint(seq, 10)
			batch[i] = natter.Message{ID: msglog.MessageID(conv, "alice", cmid), Conv: conv, Seq: seq, From: "alice", Cmid: cmid,
				Type: natter.TypeText, Body: body, TS: time.Now().UnixMilli()}
		}
		if _, err := st.InsertMessages(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	_ = st.Close(ctx)
	if err := emb.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("prefill %s: %d rows in %v", dir, n, time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(dir, "rows.txt"), []byte(strconv.Itoa(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, n
}

// procCPU is the CPU time of this process: NATS, the store and the worker.
func procCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
