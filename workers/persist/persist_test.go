package persist_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

type env struct {
	js  jetstream.JetStream
	log *msglog.Log
	st  *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	_, nc, js := testenv.StartJetStream(t)
	if _, err := streams.Apply(ctx, js, streams.Config{AckWait: 2 * time.Second, MaxDeliver: 5}); err != nil {
		t.Fatal(err)
	}
	l, err := msglog.New(ctx, nc, js, msglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, log: l, st: storetest.New(t)}
}

func (e *env) send(t *testing.T, conv string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := e.log.Append(context.Background(), msglog.Send{Conv: conv, From: "alice", Cmid: fmt.Sprint("c", i), Body: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) runner(t *testing.T, h runner.Handler) *runner.Runner {
	t.Helper()
	r, err := runner.New(e.js, runner.Config{Role: "persist", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist, BatchSize: 64, RetryDelay: 50 * time.Millisecond}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

// settled waits until every log entry is acked and the store holds want.
func (e *env) settled(t *testing.T, conv string, want int64) {
	t.Helper()
	ctx := context.Background()
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		n, err := e.st.CountMessages(ctx, conv)
		if err != nil {
			return err
		}
		c, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if n != want || info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("stored %d (want %d), consumer pending %d, ack pending %d", n, want, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// TestRedeliveryStoresOnce fails the first batch after it was written (as if
// the worker died between its MongoDB write and its ack): the batch is
// redelivered and every message is stored exactly once.
func TestRedeliveryStoresOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.send(t, "c1", 0, 300)
	real := persist.New(e.st, e.log, nil)
	var failed atomic.Bool
	var redelivered atomic.Int64
	e.runner(t, runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		for _, m := range msgs {
			if md, _ := m.Metadata(); md != nil && md.NumDelivered > 1 {
				redelivered.Add(1)
			}
		}
		res := real.Handle(ctx, msgs)
		if failed.CompareAndSwap(false, true) {
			return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: "test: died after the write"})
		}
		return res
	}))
	e.settled(t, "c1", 300)
	if redelivered.Load() == 0 {
		t.Fatal("no redelivery happened: the test proves nothing")
	}
	got, err := e.st.MessagesRange(context.Background(), "c1", 1, 1000, 1000)
	if err != nil || len(got) != 300 {
		t.Fatalf("range: %d %v", len(got), err)
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) {
			t.Fatalf("stored seq %d at %d", m.Seq, i)
		}
	}
}

// TestStoppedWorkerLosesNothing stops a worker mid-stream and starts another:
// every message ends up stored once.
func TestStoppedWorkerLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.send(t, "c2", 0, 200)
	r1 := e.runner(t, persist.New(e.st, e.log, nil))
	ctx := context.Background()
	testenv.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		if n, err := e.st.CountMessages(ctx, "c2"); err != nil || n == 0 {
			return fmt.Errorf("first worker stored nothing (%v)", err)
		}
		return nil
	})
	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e.send(t, "c2", 200, 400)
	e.runner(t, persist.New(e.st, e.log, nil))
	e.settled(t, "c2", 400)
}

// TestIdemRecordWritten: the persist worker creates the idempotency record of
// every message it stores.
func TestIdemRecordWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.send(t, "c3", 0, 10)
	kv, err := e.js.KeyValue(context.Background(), subjects.BucketIdem)
	if err != nil {
		t.Fatal(err)
	}
	// Remove the edge's records, as if it died between append and its IDEM write.
	id := msglog.MessageID("c3", "alice", "c5")
	if err := kv.Purge(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	e.runner(t, persist.New(e.st, e.log, nil))
	e.settled(t, "c3", 10)
	if _, err := kv.Get(context.Background(), id); err != nil {
		t.Fatalf("idempotency record not rewritten: %v", err)
	}
}

// TestFaultHooks: the chaos suite's hooks. Fail makes the marked message
// retry until MaxDeliver and land on the persist dead-letter subject while
// the rest is stored; AfterWrite runs once per batch, after its rows are in
// the store.
func TestFaultHooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "c4", 0, 20)
	bad, err := e.log.Append(ctx, msglog.Send{Conv: "c4", From: "alice", Cmid: "bad", Body: "hi POISON"})
	if err != nil {
		t.Fatal(err)
	}
	e.send(t, "c4", 20, 40)
	var writes atomic.Int64
	var missing atomic.Value
	h := persist.New(e.st, e.log, nil, persist.WithFaults(persist.Faults{
		Fail: func(m natter.Message) bool { return strings.Contains(m.Body, "POISON") },
		AfterWrite: func(n int, batch []natter.Message) {
			writes.Add(1)
			for _, m := range batch {
				if _, err := e.st.GetMessage(ctx, m.ID); err != nil {
					missing.Store(fmt.Sprintf("batch %d: %s not stored when AfterWrite ran: %v", n, m.ID, err))
				}
			}
		},
	}))
	e.runner(t, h)
	e.settled(t, "c4", 40)
	if writes.Load() == 0 {
		t.Fatal("AfterWrite never ran")
	}
	if msg := missing.Load(); msg != nil {
		t.Fatal(msg)
	}
	if _, err := e.st.GetMessage(ctx, bad.ID); err == nil {
		t.Fatal("the failing message was stored")
	}
	dl, err := e.js.Stream(ctx, subjects.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetLastMsgForSubject(ctx, subjects.DLQ("persist"))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got := m.Header.Get(runner.HeaderDLQMsgID); got != bad.ID {
		t.Fatalf("dead letter of %q, want %q", got, bad.ID)
	}
	if got := m.Header.Get(runner.HeaderDLQDeliveries); got != "5" {
		t.Fatalf("dead-lettered after %s deliveries, want MaxDeliver 5", got)
	}
}
