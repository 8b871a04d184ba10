package persist_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"

	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/store"
)

// blocksSettled waits until the store holds want blocks of conv and checks
// that they hold exactly what the messages collection holds, seq by seq.
func (e *env) blocksSettled(t *testing.T, conv string, want int64) {
	t.Helper()
	ctx := context.Background()
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		n, err := e.st.CountBlocks(ctx, conv)
		if err == nil && n != want {
			err = fmt.Errorf("%s: %d blocks (want %d)", conv, n, want)
		}
		return err
	})
	last := uint64(want) * store.BlockSize
	got, ok, err := e.st.ArchiveRange(ctx, conv, 1, last)
	if err != nil || !ok {
		t.Fatalf("%s: archive range: ok=%v %v", conv, ok, err)
	}
	stored, err := e.st.MessagesRange(ctx, conv, 1, last, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(last) || len(stored) != int(last) {
		t.Fatalf("%s: %d from blocks, %d stored, want %d", conv, len(got), len(stored), last)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], stored[i]) || got[i].Seq != uint64(i+1) {
			t.Fatalf("%s: block message %d = %+v, stored %+v", conv, i, got[i], stored[i])
		}
	}
}

// TestArchiveBlocks: persist writes every complete block of each
// conversation, interleaved with another, holding exactly the stored
// messages; the open block at the head is not written.
func TestArchiveBlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 300; i += 50 {
		e.send(t, "a1", i, i+50)
		e.send(t, "a2", i/2, i/2+25)
	}
	e.runner(t, persist.New(e.st, e.log, nil))
	e.settled(t, "a1", 300)
	e.settled(t, "a2", 150)
	e.blocksSettled(t, "a1", 300/store.BlockSize)
	e.blocksSettled(t, "a2", 150/store.BlockSize)
}

// TestArchiveBlocksRedelivery: batches handled twice (the first attempt of
// every third batch is retried after its write) and by two handlers that
// each see part of every block (so the one that gets a block's last
// message reads the block from the log): every block is written once and
// holds exactly the stored messages.
func TestArchiveBlocksRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.send(t, "a3", 0, 400)
	hs := []*persist.Handler{persist.New(e.st, e.log, nil), persist.New(e.st, e.log, nil)}
	var calls, redelivered atomic.Int64
	e.runner(t, runner.HandlerFunc(func(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
		n := calls.Add(1)
		for _, m := range msgs {
			if md, _ := m.Metadata(); md != nil && md.NumDelivered > 1 {
				redelivered.Add(1)
			}
		}
		res := hs[n%2].Handle(ctx, msgs)
		if n%3 == 1 {
			return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: "test: died after the write"})
		}
		return res
	}))
	e.settled(t, "a3", 400)
	e.blocksSettled(t, "a3", 400/store.BlockSize)
	if redelivered.Load() == 0 {
		t.Fatal("no redelivery happened: the test proves nothing")
	}
	// Writing the blocks again changes nothing.
	ctx := context.Background()
	msgs, ok, err := e.st.ArchiveRange(ctx, "a3", 1, 2*store.BlockSize)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	n, err := e.st.InsertBlocks(ctx, store.BlocksOf("a3", msgs))
	if err != nil || n != 0 {
		t.Fatalf("blocks written again: %d new, %v", n, err)
	}
	e.blocksSettled(t, "a3", 400/store.BlockSize)
}

// TestArchiveBlocksAfterRestart: a handler that starts in the middle of a
// block (a restart) reads that block from the log when its last message
// comes.
func TestArchiveBlocksAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "a4", 0, 100)
	r1 := e.runner(t, persist.New(e.st, e.log, nil))
	e.settled(t, "a4", 100)
	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e.send(t, "a4", 100, 200)
	e.runner(t, persist.New(e.st, e.log, nil))
	e.settled(t, "a4", 200)
	e.blocksSettled(t, "a4", 200/store.BlockSize)
	if n, _ := e.st.CountBlocks(ctx, ""); n != 200/store.BlockSize {
		t.Fatalf("%d blocks in all", n)
	}
}

// TestArchiveBlocksSkipDeadLetter: a message the store refuses until it is
// dead-lettered is in the log but not in the messages collection; the block
// holding it (which persist reads from the log, since it never completes in
// memory) is not written, so the blocks hold only what the messages
// collection holds; the next block is written.
func TestArchiveBlocksSkipDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, "a5", 0, 20)
	bad, err := e.log.Append(ctx, msglog.Send{Conv: "a5", From: "alice", Cmid: "bad", Body: "POISON"})
	if err != nil {
		t.Fatal(err)
	}
	e.send(t, "a5", 20, 150) // seqs 1..151: blocks 0 (with the poison) and 1
	h := persist.New(e.st, e.log, nil, persist.WithFaults(persist.Faults{
		Fail: func(m natter.Message) bool { return m.Body == "POISON" },
	}))
	e.runner(t, h)
	e.settled(t, "a5", 150) // the poison dead-lettered, every other stored
	if _, err := e.st.GetMessage(ctx, bad.ID); err == nil {
		t.Fatal("the failing message was stored")
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		_, ok, err := e.st.ArchiveRange(ctx, "a5", store.BlockSize+1, 2*store.BlockSize)
		if err == nil && !ok {
			err = errors.New("block 1 not written")
		}
		return err
	})
	if msgs, ok, err := e.st.ArchiveRange(ctx, "a5", 1, store.BlockSize); err != nil || ok {
		t.Fatalf("block 0 written with the dead-lettered message: ok=%v %v; seq %d in it: %+v", ok, err, bad.Seq, msgs[bad.Seq-1:bad.Seq])
	}
	if n, err := e.st.CountBlocks(ctx, "a5"); err != nil || n != 1 {
		t.Fatalf("%d blocks, want 1: %v", n, err)
	}
}
