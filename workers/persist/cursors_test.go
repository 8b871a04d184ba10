package persist_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
)

// TestCursorAckNeverComes: a read-cursor write whose ack the server never
// sends (a frozen KV_CURSORS leader, a route dropped with the write) fails
// its batch for a retry after cursors.DefaultTimeout; it does not hold the
// role's Handle, so the messages that come after it are stored. (It held
// it until the connection was lost: in the chaos scenario
// sigstop-msgs-leader, acked messages stayed unstored for over 2 minutes.)
func TestCursorAckNeverComes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	nc := e.js.Conn()
	cur, err := cursors.Open(ctx, nc, e.js, cursors.WithRevisionCache(16))
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(e.js, runner.Config{Role: "persist", Stream: subjects.StreamMsgs, Consumer: subjects.ConsumerPersist, BatchSize: 64, RetryDelay: 50 * time.Millisecond},
		persist.New(e.st, e.log, nil, persist.WithCursors(cur)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = r.Stop(sctx)
	})
	// The first message raises alice's cursor: its revision is remembered,
	// so the next raise writes without reading.
	e.send(t, "c5", 0, 1)
	e.settled(t, "c5", 1)
	// The bucket's stream goes and something that never answers takes its
	// subjects: a cursor write is received and its ack never sent.
	if err := e.js.DeleteStream(ctx, subjects.KVStream(subjects.BucketCursors)); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.Subscribe(subjects.KVSubject(subjects.BucketCursors, ">"), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stored := func(want int64) func() error {
		return func() error {
			n, err := e.st.CountMessages(ctx, "c5")
			if err != nil {
				return err
			}
			if n < want {
				return fmt.Errorf("stored %d of c5, want %d", n, want)
			}
			return nil
		}
	}
	// The second message is stored (before its cursor write), and its
	// batch waits for the ack.
	e.send(t, "c5", 1, 2)
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, stored(2))
	// The third is stored once that batch gave up.
	e.send(t, "c5", 2, 3)
	testenv.CheckFor(t, cursors.DefaultTimeout+15*time.Second, 20*time.Millisecond, stored(3))
}
