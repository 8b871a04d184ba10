package events_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/runner"
)

// BenchmarkMessageEventsCopy is the CPU (server and client: one process,
// getrusage) per log entry of making message events out of MSGS, on file
// storage, by each way there is:
//
//   - log-only: the entries are appended and nothing copies them (the
//     baseline);
//   - role: the events role (runner on its consumer EVENTS of MSGS,
//     publishes to EVENTS, acks) as before;
//   - sourced: EVENTS sources MSGS server-side with a subject transform;
//   - reader: no copy, one more role reading MSGS (a runner whose handler
//     only acks: what any consumer of message events reading the log
//     costs, on top of its own work), with batches of 256 gathered for
//     up to 20 ms (as the events role) or, reader-64, of up to 64 taken
//     as they come (as attachgc before it lingered).
//
// cpu-us/entry minus log-only's is the cost of the copy.
func BenchmarkMessageEventsCopy(b *testing.B) {
	for _, way := range []string{"log-only", "role", "sourced", "reader", "reader-64"} {
		b.Run(way, func(b *testing.B) { benchCopy(b, way) })
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchCopy(b *testing.B, way string) {
	_, nc, js := testenv.StartJetStream(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defs := streams.Define(streams.Config{})
	var msgsCfg, evCfg jetstream.StreamConfig
	for _, sc := range defs.Streams {
		switch sc.Name {
		case subjects.StreamMsgs:
			msgsCfg = sc
		case subjects.StreamEvents:
			evCfg = sc
		}
	}
	if way == "sourced" {
		evCfg.Sources = []*jetstream.StreamSource{{Name: subjects.StreamMsgs,
			SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "im.msg.*", Destination: "im.evt.message.{{wildcard(1)}}"}}}}
	}
	for _, sc := range []jetstream.StreamConfig{msgsCfg, evCfg} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			b.Fatal(err)
		}
	}
	var acked atomic.Int64
	reader := way == "reader" || way == "reader-64"
	if way == "role" || reader {
		var h runner.Handler = events.NewHandler(js, nil)
		if reader {
			h = runner.HandlerFunc(func(_ context.Context, msgs []jetstream.Msg) []runner.Result {
				acked.Add(int64(len(msgs)))
				return runner.All(len(msgs), runner.Result{Outcome: runner.Ack})
			})
		}
		if _, err := js.CreateConsumer(ctx, subjects.StreamMsgs, jetstream.ConsumerConfig{Durable: subjects.ConsumerEvents,
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10_000, AckWait: 30 * time.Second, MaxDeliver: 10}); err != nil {
			b.Fatal(err)
		}
		rc := runner.Config{Role: "events", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerEvents, BatchSize: 256, Linger: 20 * time.Millisecond}
		if way == "reader-64" {
			rc.BatchSize, rc.Linger = 64, 0
		}
		r, err := runner.New(js, rc, h)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer r.Stop(ctx)
	}
	body := "a message body of about the size the relay benchmark sends, 128 bytes: lorem ipsum dolor sit amet, consectetur adipiscing"
	n := b.N
	b.ResetTimer()
	start := cpuNow()
	var futs []jetstream.PubAckFuture
	for i := range n {
		conv := "d_u" + strconv.Itoa(i%100) + "_v"
		m := natter.Message{ID: fmt.Sprintf("m_%d", i), Conv: conv, Seq: uint64(i/100 + 1), From: "u", Cmid: "c" + strconv.Itoa(i), Body: body, TS: time.Now().UnixMilli()}
		pm := nats.NewMsg(subjects.Msg(conv))
		pm.Data = msglog.AppendJSON(nil, &m)
		pm.Header.Set(jetstream.MsgIDHeader, m.ID)
		pm.Header.Set(msglog.HeaderSeq, strconv.FormatUint(m.Seq, 10))
		f, err := js.PublishMsgAsync(pm)
		if err != nil {
			b.Fatal(err)
		}
		futs = append(futs, f)
		if len(futs) == 1000 {
			<-js.PublishAsyncComplete()
			futs = futs[:0]
		}
	}
	<-js.PublishAsyncComplete()
	if reader {
		testenv.CheckFor(b, 5*time.Minute, 20*time.Millisecond, func() error {
			if got := acked.Load(); got < int64(n) {
				return fmt.Errorf("%d of %d read", got, n)
			}
			return nil
		})
	}
	if way == "role" || way == "sourced" {
		s, err := js.Stream(ctx, subjects.StreamEvents)
		if err != nil {
			b.Fatal(err)
		}
		testenv.CheckFor(b, 5*time.Minute, 20*time.Millisecond, func() error {
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			if info.State.Msgs < uint64(n) {
				return fmt.Errorf("%d events of %d", info.State.Msgs, n)
			}
			return nil
		})
	}
	cpu := cpuNow() - start
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/entry")
	_ = nc
}
