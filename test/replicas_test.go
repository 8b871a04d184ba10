package test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestWorkerReplicaJoinsAndDrains runs persist and fanout on one worker
// replica while four senders send ~300 msg/s into four groups, starts a
// second replica from the same configuration (no change anywhere else),
// checks that it takes a substantial share of both roles' work, then shuts
// the first one down gracefully while traffic still flows. At the end every
// acknowledged message is stored exactly once and every member received it
// exactly once, in order, and no message was delivered to a replica twice
// (the drain handed nothing back). The figure (per-replica processed counts
// by phase) goes to docs/operations.md.
func TestWorkerReplicaJoinsAndDrains(t *testing.T) {
	t.Parallel()
	e := newReplicaEnv(t)
	naks := e.countNaks(t)
	w1 := e.replica(t)
	tr := newTraffic(t, e.front, 4, 2)
	halt := make(chan struct{})
	sent := tr.send(5000, 12*time.Millisecond, 120*time.Second, halt)
	stopLoad := func() {
		select {
		case <-halt:
		default:
			close(halt)
		}
		<-sent
	}
	t.Cleanup(stopLoad)
	ackedAtLeast := func(n int) func() error {
		return func() error {
			if a := tr.acked(); a < n {
				return fmt.Errorf("%d acked, want %d", a, n)
			}
			return nil
		}
	}

	// One replica.
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if c := processed(t, w1); c.persist < 300 || c.fanout < 300 {
			return fmt.Errorf("first replica processed %+v", c)
		}
		return nil
	})

	// A second one joins.
	w2 := e.replica(t)
	atJoin, ackedAtJoin := processed(t, w1), tr.acked()
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, ackedAtLeast(ackedAtJoin+1500))
	atDrain1, atDrain2 := processed(t, w1), processed(t, w2)
	ackedAtDrain := tr.acked()

	// The first one drains while traffic flows.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of the first replica: %v", err)
	}
	drained := time.Since(start)
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, ackedAtLeast(ackedAtDrain+600))
	stopLoad()
	total := tr.acked()
	loadStopped := time.Now()

	e.waitConsumersIdle(t)
	tr.checkStored(t, e.front)
	settled := time.Since(loadStopped)
	tr.checkDelivered(t)
	end2 := processed(t, w2)

	deliveries, end1, unrouted := firstReplicaAtExit(t, e, end2, atDrain1, uint64(total), naks)

	var f figure
	f.add("worker-1", "alone", atJoin)
	f.add("worker-1", "both", atDrain1.sub(atJoin))
	f.add("worker-2", "both (joined)", atDrain2)
	f.add("worker-1", "draining, then gone", end1.sub(atDrain1))
	f.add("worker-2", "alone after the drain", end2.sub(atDrain2))
	f.add("total", "", end1.add(end2))
	both := atDrain1.sub(atJoin)
	pushes, synced, dups := tr.clientStats()
	t.Logf("%d messages acked (%d while both ran); first replica drained in %v; persist and fanout caught up %v after the load stopped\n%s"+
		"second replica's share while both ran: persist %.0f%%, fanout %.0f%%; consumer deliveries: persist %d, fanout %d (acked %d; persist %d, fanout %d sent to the drained replica's closed inbox and delivered again)\n"+
		"clients: %d pushes, %d messages filled by sync, %d duplicates dropped",
		total, ackedAtDrain-ackedAtJoin, drained.Round(time.Millisecond), settled.Round(time.Millisecond), f.String(),
		100*share(atDrain2.persist, both.persist), 100*share(atDrain2.fanout, both.fanout), deliveries.persist, deliveries.fanout, total, unrouted.persist, unrouted.fanout,
		pushes, synced, dups)

	if s := share(atDrain2.persist, both.persist); s < 0.2 {
		t.Errorf("second replica processed %d of %d persist messages while both ran (%.0f%%), want >= 20%%", atDrain2.persist, atDrain2.persist+both.persist, 100*s)
	}
	if s := share(atDrain2.fanout, both.fanout); s < 0.2 {
		t.Errorf("second replica processed %d of %d fanout messages while both ran (%.0f%%), want >= 20%%", atDrain2.fanout, atDrain2.fanout+both.fanout, 100*s)
	}
}

// TestWorkerReplicaDrainsBacklog builds a backlog while no worker replica
// runs, starts two replicas and shuts the first one down while the backlog
// is still being worked off, with messages in its hands: everything is
// stored once and delivered once, in order, and nothing was delivered
// twice (what the drained replica had pulled, it processed).
func TestWorkerReplicaDrainsBacklog(t *testing.T) {
	t.Parallel()
	e := newReplicaEnv(t)
	naks := e.countNaks(t)
	tr := newTraffic(t, e.front, 4, 2)
	// 16,000 messages: more than the consumers' MaxAckPending (10,000), so
	// the replicas cannot have pulled the whole backlog when the first one
	// drains, however fast they store it.
	const each = 4000
	built := time.Now()
	<-tr.send(each, 0, 120*time.Second, nil)
	buildTook := time.Since(built)
	total := tr.acked()
	if total != 4*each {
		t.Fatalf("%d acked, want %d", total, 4*each)
	}
	// The consumer's pending count follows the stream a moment behind the
	// acks: poll it.
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if ci := e.consumer(t, subjects.ConsumerPersist); ci.NumPending != uint64(total) {
			return fmt.Errorf("persist consumer has %d pending before any replica runs, want %d", ci.NumPending, total)
		}
		return nil
	})

	started := time.Now()
	ws := e.replicas(t, 2)
	w1, w2 := ws[0], ws[1]
	testenv.CheckFor(t, 60*time.Second, 5*time.Millisecond, func() error {
		if c1, c2 := processed(t, w1), processed(t, w2); c1.persist == 0 || c2.persist == 0 {
			return fmt.Errorf("persist processed: first replica %d, second %d", c1.persist, c2.persist)
		}
		return nil
	})
	before := processed(t, w1)
	persistAt, fanoutAt := e.consumer(t, subjects.ConsumerPersist), e.consumer(t, subjects.ConsumerFanout)
	if persistAt.NumPending == 0 || persistAt.NumAckPending == 0 {
		t.Fatalf("persist backlog worked off before the drain: %d pending, %d unacknowledged", persistAt.NumPending, persistAt.NumAckPending)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := w1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of the first replica: %v", err)
	}
	drained := time.Since(start)

	e.waitConsumersIdle(t)
	workedOff := time.Since(started)
	tr.checkStored(t, e.front)
	tr.checkDelivered(t)
	end2 := processed(t, w2)
	deliveries, end1, unrouted := firstReplicaAtExit(t, e, end2, before, uint64(total), naks)

	var f figure
	f.add("worker-1", "before its drain", before)
	f.add("worker-1", "draining", end1.sub(before))
	f.add("worker-2", "whole run", end2)
	f.add("total", "", end1.add(end2))
	t.Logf("backlog of %d messages (sent in %v); at the drain: persist %d pending + %d unacknowledged, fanout %d pending + %d unacknowledged; drain took %v; backlog worked off %v after the replicas started; consumer deliveries persist %d, fanout %d (persist %d, fanout %d sent to the drained replica's closed inbox and delivered again)\n%s",
		total, buildTook.Round(time.Millisecond), persistAt.NumPending, persistAt.NumAckPending, fanoutAt.NumPending, fanoutAt.NumAckPending, drained.Round(time.Millisecond), workedOff.Round(time.Millisecond),
		deliveries.persist, deliveries.fanout, unrouted.persist, unrouted.fanout, f.String())
	if end1.persist == before.persist {
		t.Errorf("the first replica held no persist messages when it drained")
	}
}

// firstReplicaAtExit returns the consumers' deliveries, the first
// replica's processed counts when it exited, and the deliveries that
// reached no replica (see [checkDeliveredOnce]), failing the test unless
// every message was delivered once. The first replica's /metrics closed
// with its HTTP server, before its runners drained; every routed delivery
// of a consumer is processed by exactly one replica, so its count at exit
// is the consumer's deliveries minus the unrouted ones minus the second
// replica's (end2). It cannot be below what it had processed before its
// drain.
func firstReplicaAtExit(t *testing.T, e *replicaEnv, end2, beforeDrain roleCounts, total uint64, naks *[2]atomic.Uint64) (deliveries, end1, unrouted roleCounts) {
	t.Helper()
	deliveries = roleCounts{
		persist: e.consumer(t, subjects.ConsumerPersist).Delivered.Consumer,
		fanout:  e.consumer(t, subjects.ConsumerFanout).Delivered.Consumer,
	}
	unrouted = checkDeliveredOnce(t, deliveries, total, naks)
	end1 = deliveries.sub(unrouted).sub(end2)
	if end1.persist < beforeDrain.persist || end1.fanout < beforeDrain.fanout || end1.persist > deliveries.persist || end1.fanout > deliveries.fanout {
		t.Fatalf("deliveries %+v (%+v reached no replica), second replica %+v, first replica before drain %+v", deliveries, unrouted, end2, beforeDrain)
	}
	return deliveries, end1, unrouted
}

// countNaks counts the naks of the PERSIST and FANOUT consumers from now
// on: a handler's Retry (a member lookup that timed out on a loaded
// machine) naks its message and the server delivers it again, a delivery
// that is not a drain's. The server announces every nak.
func (e *replicaEnv) countNaks(t *testing.T) *[2]atomic.Uint64 {
	t.Helper()
	nc := testenv.Connect(t, e.front.NATSURL())
	var n [2]atomic.Uint64
	for i, name := range []string{subjects.ConsumerPersist, subjects.ConsumerFanout} {
		if _, err := nc.Subscribe(server.JSAdvisoryConsumerMsgNakPre+"."+subjects.StreamMsgs+"."+name, func(*nats.Msg) { n[i].Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// drainInFlight bounds, per role, the deliveries one drain can leave
// unrouted: the most the server can address to the draining replica's open
// pull request, which asks for the runner's PullMaxMessages (2 x BatchSize
// x Concurrency: persist 2x256x2, fanout 2x64x1, internal/node/roles.go).
var drainInFlight = roleCounts{persist: 2 * 256 * 2, fanout: 2 * 64 * 1}

// checkDeliveredOnce fails unless each consumer delivered its total
// messages once, plus once more for each nak: nothing was handed back by a
// drain or redelivered after its AckWait. It returns the deliveries that
// reached no replica: a drain unsubscribes the replica's pull inbox while
// the server still holds its pull request, and a message the server sends
// to that request in between reaches no subscriber. The server puts it
// back for immediate redelivery without counting it as a delivery of the
// message (consumer.didNotDeliver in nats-server), but the consumer's
// delivery sequence (Delivered.Consumer) has advanced: such a message is
// delivered once, and counted twice. One drain leaves at most
// [drainInFlight] of them. A nak's announcement can trail the delivery it
// caused: poll.
func checkDeliveredOnce(t *testing.T, deliveries roleCounts, total uint64, naks *[2]atomic.Uint64) (unrouted roleCounts) {
	t.Helper()
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		np, nf := naks[0].Load(), naks[1].Load()
		if deliveries.persist < total+np || deliveries.fanout < total+nf {
			return fmt.Errorf("consumer deliveries persist %d (%d naks), fanout %d (%d naks) for %d messages: fewer than the messages and their naks", deliveries.persist, np, deliveries.fanout, nf, total)
		}
		unrouted = roleCounts{persist: deliveries.persist - total - np, fanout: deliveries.fanout - total - nf}
		if unrouted.persist > drainInFlight.persist || unrouted.fanout > drainInFlight.fanout {
			return fmt.Errorf("consumer deliveries persist %d (%d naks), fanout %d (%d naks) for %d messages: more than one drain's in-flight pull (persist %d, fanout %d) beyond them; some were delivered twice",
				deliveries.persist, np, deliveries.fanout, nf, total, drainInFlight.persist, drainInFlight.fanout)
		}
		return nil
	})
	return unrouted
}
