package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
)

// rawServer is a plain nats-server with its WebSocket listener on, in this
// process: the baseline natter is compared with.
type rawServer struct {
	s   *server.Server
	dir string
}

func startRawServer(dataDir string) (*rawServer, error) {
	dir, err := os.MkdirTemp(dataDir, "natter-bench-raw-")
	if err != nil {
		return nil, fmt.Errorf("bench: raw server dir: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "bench-raw", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		MaxPayload: 1 << 20, JetStream: true, StoreDir: dir,
		Websocket: server.WebsocketOpts{Host: "127.0.0.1", Port: -1, NoTLS: true},
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: raw server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, errors.New("bench: raw server not ready")
	}
	return &rawServer{s: s, dir: dir}, nil
}

func (r *rawServer) wsURL() string { return r.s.WebsocketURL() }

func (r *rawServer) close() {
	r.s.Shutdown()
	r.s.WaitForShutdown()
	_ = os.RemoveAll(r.dir)
}

// rawPubSub is the raw nats-server WebSocket pub/sub baseline of relay:
// the same number of connections in pairs, the same size and rate.
func (r *runner) rawPubSub(ctx context.Context, conns int, rate float64) (*Result, error) {
	rs, err := startRawServer(r.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	pairs := conns / 2
	base := r.jobBase("rawrelay", nil, []string{rs.wsURL()})
	base.Window = r.cfg.RawBatch
	base.Prefix = r.prefix + "rr"
	d, err := r.drive(ctx, "raw nats ws pub/sub", nil, r.jobs(base, pairs, rate), hooks{})
	if err != nil {
		return nil, err
	}
	res := r.result("baseline", "raw nats-server ws pub/sub", d, pairs*2, rate)
	res.Target = "in-process nats-server (websocket)"
	if rate == 0 {
		res.note("closed loop: each publisher flushes (a round trip) every %d messages", r.cfg.RawBatch)
	}
	return res, nil
}

// rawFanout is the raw nats-server WebSocket fan-out baseline: members
// subscribers on one subject, one publisher.
func (r *runner) rawFanout(ctx context.Context, members int, rate float64) (*Result, error) {
	rs, err := startRawServer(r.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	base := r.jobBase("rawfanout", nil, []string{rs.wsURL()})
	base.Window = r.cfg.RawBatch
	base.Prefix = r.prefix + "rf"
	jobs := r.jobs(base, members, 0)
	jobs[0].Sender, jobs[0].Rate = true, rate
	d, err := r.drive(ctx, "raw nats ws fanout", nil, jobs, hooks{during: expectFromSender})
	if err != nil {
		return nil, err
	}
	res := r.result("baseline", "raw nats-server ws fan-out", d, members, rate)
	res.Unit = "deliveries/s"
	res.CPU.Per = "delivery"
	res.Target = "in-process nats-server (websocket)"
	return res, nil
}

// expectFromSender forwards the fanout sender's count to every member.
func expectFromSender(ctx context.Context, f *fleet) error {
	n, err := f.waitSent(ctx)
	if err != nil {
		return err
	}
	f.broadcast(fmt.Sprintf("expect %d", n))
	return nil
}

// rawJetStream is the raw JetStream baseline: async publishes of size bytes
// to a file stream (R1) on a plain in-process nats-server for dur, at most
// 4,096 unacked.
func (r *runner) rawJetStream(ctx context.Context, dur time.Duration) (*Result, error) {
	rs, err := startRawServer(r.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	nc, err := nats.Connect(rs.s.ClientURL(), nats.Name("natter-bench-raw-js"))
	if err != nil {
		return nil, fmt.Errorf("bench: raw jetstream: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	name := strings.ToUpper("BENCH_" + r.prefix)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"benchraw." + r.prefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		return nil, fmt.Errorf("bench: raw jetstream stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	subj := "benchraw." + r.prefix + ".x"
	cpu0 := selfCPU()
	start := time.Now()
	var acked, errs atomic.Uint64
	lat := newHist()
	var sent uint64
	var wg sync.WaitGroup
	for time.Since(start) < dur && ctx.Err() == nil {
		now := time.Now()
		// At 4,096 in flight a publish waits for room (back-pressure, as
		// for natter's own appends), rather than failing after the default
		// 200 ms on a loaded machine.
		f, err := js.PublishAsync(subj, []byte(body(now, r.cfg.Size)), jetstream.WithStallWait(10*time.Second))
		if err != nil {
			errs.Add(1)
			continue
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-f.Ok():
				acked.Add(1)
				lat.add(time.Since(now))
			case <-f.Err():
				errs.Add(1)
			}
		}()
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu := selfCPU() - cpu0
	res := &Result{Scenario: "baseline", Name: "raw JetStream async publish", Target: "in-process nats-server, file stream R1",
		Conns: 1, Size: r.cfg.Size, Seconds: round3(secs), Connected: 1, Sent: sent, Delivered: acked.Load(),
		Errors: errs.Load(), Unit: "acked msg/s", Latency: lat.latency(), PersistPending: -1}
	res.Throughput = round3(float64(res.Delivered) / secs)
	res.CPU = &CPU{Server: "this process, getrusage", Per: "msg", Count: float64(res.Delivered), ServerUs: float64(cpu.Microseconds())}
	res.CPU.fill(secs)
	res.note("publish -> ack latency with up to 4,096 publishes in flight; CPU is this process (server and publisher)")
	return res, nil
}

// rawInsertMany is the raw store baseline: unordered InsertMany of
// message-shaped documents in batches of 256 into a scratch collection of
// the target's MongoDB, from 2 writers (the persist worker's concurrency),
// for dur.
func (r *runner) rawInsertMany(ctx context.Context, t *target, uri string, dur time.Duration) (*Result, error) {
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("bench: raw insert: %w", err)
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	coll := mc.Database("natterbench").Collection("raw_" + r.prefix)
	defer func() { _ = coll.Drop(context.WithoutCancel(ctx)) }()
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "conv", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true)}); err != nil {
		return nil, fmt.Errorf("bench: raw insert: index: %w", err)
	}
	const batch, writers = 256, 2
	cpu0, srv0 := selfCPU(), serverCPU(t)
	start := time.Now()
	var docs, errs atomic.Uint64
	lat := newHist()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Since(start) < dur && ctx.Err() == nil; k++ {
				b := make([]any, batch)
				for i := range b {
					id := fmt.Sprintf("%s_%d_%d_%d", r.prefix, w, k, i)
					b[i] = natter.Message{ID: id, Conv: fmt.Sprintf("d_bench%s_%d", r.prefix, w), Seq: uint64(k*batch + i + 1), From: "u", Cmid: id,
						Type: "text", Body: body(time.Now(), r.cfg.Size), TS: time.Now().UnixMilli()}
				}
				t := time.Now()
				if _, err := coll.InsertMany(ctx, b, options.InsertMany().SetOrdered(false)); err != nil {
					errs.Add(1)
					continue
				}
				lat.add(time.Since(t))
				docs.Add(batch)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu, srv1 := selfCPU()-cpu0, serverCPU(t)
	res := &Result{Scenario: "baseline", Name: "raw InsertMany (same store)", Target: "the natter target's MongoDB, a scratch collection",
		Conns: writers, Size: r.cfg.Size, Seconds: round3(secs), Connected: writers, Sent: docs.Load(), Delivered: docs.Load(),
		Errors: errs.Load(), Unit: "docs/s", Latency: lat.latency(), PersistPending: -1}
	res.Throughput = round3(float64(res.Delivered) / secs)
	res.CPU = &CPU{Per: "doc", Count: float64(res.Delivered)}
	switch {
	case t.local:
		res.CPU.Server, res.CPU.ServerUs = "this process, getrusage: the store and the writers", float64(cpu.Microseconds())
	default:
		res.CPU.Split, res.CPU.Generator, res.CPU.GeneratorUs = true, "this process, getrusage: the writers", float64(cpu.Microseconds())
		if srv0 >= 0 && srv1 >= 0 {
			res.CPU.Server, res.CPU.ServerPIDs, res.CPU.ServerUs = fmt.Sprintf("pids %s, /proc/<pid>/stat", joinInts(t.pids)), t.pids, float64((srv1 - srv0).Microseconds())
		}
	}
	res.CPU.fill(secs)
	res.note("batches of %d from %d writers; latency is per batch; with natter's indexes (_id and unique {conv, seq})", batch, writers)
	return res, nil
}
