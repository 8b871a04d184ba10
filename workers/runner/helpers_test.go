package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

const testRole = "test"

// env is one embedded server with natter's streams applied.
type env struct {
	t   testing.TB
	srv *natsembed.Server
	js  jetstream.JetStream // the publisher's connection
}

func newEnv(t testing.TB, cfg streams.Config) *env {
	t.Helper()
	e := &env{t: t, srv: testenv.StartNATS(t)}
	e.js = e.connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Apply(ctx, e.js, cfg); err != nil {
		t.Fatalf("apply streams: %v", err)
	}
	return e
}

// connect opens a new connection: one per replica, as separate processes have.
func (e *env) connect() jetstream.JetStream {
	e.t.Helper()
	return testenv.JetStream(e.t, testenv.Connect(e.t, e.srv.ClientURL()))
}

// publish appends messages "0".."n-1" to the log, spread over a few
// conversations.
func (e *env) publish(n int) {
	e.t.Helper()
	e.publishRange(0, n)
}

// publishRange appends messages "from".."to-1".
func (e *env) publishRange(from, to int) {
	e.t.Helper()
	for i := from; i < to; i++ {
		if _, err := e.js.PublishAsync(subjects.Msg(fmt.Sprintf("c%d", i%7)), []byte(strconv.Itoa(i))); err != nil {
			e.t.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		e.t.Fatalf("publish: %d acks missing", e.js.PublishAsyncPending())
	}
}

// runner starts a Runner of testRole on PERSIST over its own connection and
// stops it at cleanup.
func (e *env) runner(cfg runner.Config, h runner.Handler) *runner.Runner {
	e.t.Helper()
	cfg.Role = testRole
	cfg.Stream, cfg.Consumer = subjects.StreamMsgs, subjects.ConsumerPersist
	r, err := runner.New(e.connect(), cfg, h)
	if err != nil {
		e.t.Fatalf("new runner: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		e.t.Fatalf("start runner: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

func (e *env) consumerInfo() *jetstream.ConsumerInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		e.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// settled reports whether the consumer has handled every message the log
// holds: its ack floor (messages acked or terminated, in stream order) has
// reached the stream's last sequence, and nothing is pending or unacked.
// The consumer takes every subject of the stream (streams.Define's filter
// is the stream's subject), so the ack floor reaches the last sequence.
//
// NumPending == 0 && NumAckPending == 0 alone is no proof: the server sends
// the PubAck before it counts the new message for its consumers (a separate
// goroutine does that), so right after a publish the consumer can report
// nothing pending and nothing unacked while the message sits in the stream
// undelivered. The stream's last sequence does not lag: the message is
// stored before the PubAck is sent.
func (e *env) settled() error {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	last := s.CachedInfo().State.LastSeq
	info := e.consumerInfo()
	if f := info.Config.FilterSubject; len(info.Config.FilterSubjects) > 0 || f != "" && !slices.Equal([]string{f}, s.CachedInfo().Config.Subjects) {
		e.t.Fatalf("settled: consumer filters %q %q, not every subject of %q", f, info.Config.FilterSubjects, s.CachedInfo().Config.Subjects)
	}
	if info.AckFloor.Stream < last || info.NumPending != 0 || info.NumAckPending != 0 {
		return fmt.Errorf("consumer: ack floor at stream seq %d of %d, %d pending, %d awaiting ack",
			info.AckFloor.Stream, last, info.NumPending, info.NumAckPending)
	}
	return nil
}

// deadLetter returns the last dead letter of testRole.
func (e *env) deadLetter() (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, subjects.StreamDLQ)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subjects.DLQ(testRole))
}

// tally counts how often each message (by payload) was handled.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func newTally() *tally { return &tally{seen: make(map[string]int)} }

func (ta *tally) add(m jetstream.Msg) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.seen[string(m.Data())]++
	return ta.seen[string(m.Data())]
}

func (ta *tally) count(payload string) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.seen[payload]
}

func (ta *tally) distinct() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return len(ta.seen)
}

// ackAll is a Handler that tallies and acknowledges every message.
func ackAll(ta *tally) runner.HandlerFunc {
	return func(_ context.Context, msgs []jetstream.Msg) []runner.Result {
		for _, m := range msgs {
			ta.add(m)
		}
		return runner.All(len(msgs), runner.Result{Outcome: runner.Ack})
	}
}
