//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
)

// killNATS kills one NATS node under load, keeps it down while the load
// goes on, brings it back and waits until every replica is current again.
// With leader, the victim is the MSGS leader. Otherwise it is a node that
// does not lead MSGS but leads the FANOUT consumer (its leadership is moved
// there first if the MSGS leader had it): sends go on, and the figure is
// how long deliveries pause until the runners pull from FANOUT's new
// leader.
func killNATS(t *testing.T, e *env, name string, leader bool) string {
	l := faultLoad(t, e, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lead, err := e.msgsLeader(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	victim := lead
	if !leader {
		victim = e.fanoutAwayFrom(t, lead)
	}
	others := e.jsVia(t, victim)
	leads, attached := e.leads(ctx, e.js, victim), e.attachedTo(victim)
	at := l.fault()
	victim.Kill()
	elected, fanoutElected := e.waitElected(t, others, victim, at, leader)
	n := l.acked()
	l.waitAcked(t, n+100, 60*time.Second)
	// Deliveries of what was sent in the 10 s after the kill.
	l.waitDeliveredUntil(t, at.Add(10*time.Second), 90*time.Second)
	down := time.Since(at)
	restart := time.Now()
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(restart)
	caughtUp := e.waitHealthy(t, others, 2*time.Minute)
	rec := l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	sendPause := gap(ackTimes(l), at, rec)
	dlvPause := gap(deliveryTimes(l.users), at, rec)
	maxLag, nLag := maxOf(deliveries(l.users), at, at.Add(10*time.Second))
	role := "a follower of MSGS, leading FANOUT"
	if leader {
		role = fmt.Sprintf("MSGS leader; new leader elected after %v", elected.Round(time.Millisecond))
	}
	line := l.report(t, res, fmt.Sprintf("%skill -9 %s (%s; it led %v; %v were connected to it); FANOUT led by another node after %v; longest pause between the kill and the recovery: %v without an ack, %v without a delivery; messages sent in the 10 s after the kill: send->deliver max %v (n=%d); 100 sends acked while it was down (down %v); ready %v after its restart, every replica current %v later",
		gapFigure(sendPause, leader), victim.Name, role, leads, attached, fanoutElected.Round(time.Millisecond), sendPause.Round(time.Millisecond), dlvPause.Round(time.Millisecond), maxLag.Round(time.Millisecond), nLag,
		down.Round(time.Millisecond), restarted.Round(time.Millisecond), caughtUp.Round(time.Millisecond)))
	if leader {
		checkSendGap(t, sendPause)
	}
	return line
}

// maxSendGap bounds the longest time without any acked send while the MSGS
// leader is dead or frozen: the election (nats-server's Raft election
// timeout is 4-9 s) and the first retry that reaches the new leader.
const maxSendGap = 10 * time.Second

// gapFigure is the longest time without an ack, as the summary starts the
// MSGS leader scenarios' figures with it.
func gapFigure(d time.Duration, bounded bool) string {
	if !bounded {
		return ""
	}
	return fmt.Sprintf("longest without an ack %v (bound %v); ", d.Round(time.Millisecond), maxSendGap)
}

// checkSendGap fails the scenario when no send was acked for longer than
// maxSendGap.
func checkSendGap(t *testing.T, d time.Duration) {
	t.Helper()
	if d > maxSendGap {
		t.Errorf("no send acked for %v during the fault, more than %v", d.Round(time.Millisecond), maxSendGap)
	}
}

// waitElected polls (through js, which avoids the victim) until neither
// the FANOUT consumer nor, with msgs, the MSGS stream is led by victim, and
// returns how long after at each had another leader.
func (e *env) waitElected(t *testing.T, js jetstream.JetStream, victim *cluster.Proc, at time.Time, msgs bool) (msgsAfter, fanoutAfter time.Duration) {
	t.Helper()
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if msgs && msgsAfter == 0 {
			if p, err := e.msgsLeader(ctx, js); err == nil && p != victim {
				msgsAfter = time.Since(at)
			}
		}
		if fanoutAfter == 0 {
			if p, err := e.consumerLeader(ctx, js, subjects.ConsumerFanout); err == nil && p != victim {
				fanoutAfter = time.Since(at)
			}
		}
		if msgs && msgsAfter == 0 || fanoutAfter == 0 {
			return fmt.Errorf("%s still leads MSGS (%v) or FANOUT (%v)", victim.Name, msgs && msgsAfter == 0, fanoutAfter == 0)
		}
		return nil
	})
	return msgsAfter, fanoutAfter
}

// fanoutAwayFrom returns the node leading the FANOUT consumer, after moving
// that leadership to another node (a stepdown) if msgsLead had it.
func (e *env) fanoutAwayFrom(t *testing.T, msgsLead *cluster.Proc) *cluster.Proc {
	t.Helper()
	var to *cluster.Proc
	for _, p := range e.c.NATS {
		if p != msgsLead {
			to = p
			break
		}
	}
	var lead *cluster.Proc
	testenv.CheckFor(t, 60*time.Second, 250*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := e.consumerLeader(ctx, e.js, subjects.ConsumerFanout)
		if err != nil {
			return err
		}
		if p != msgsLead {
			lead = p
			return nil
		}
		req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, to.Name)
		msg, err := e.nc.RequestWithContext(ctx, fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", subjects.StreamMsgs, subjects.ConsumerFanout), []byte(req))
		if err != nil {
			return fmt.Errorf("FANOUT stepdown: %w", err)
		}
		return fmt.Errorf("FANOUT led by the MSGS leader %s; stepdown to %s asked: %s", p.Name, to.Name, msg.Data)
	})
	// The new leader's followers must be current before the kill.
	e.waitHealthy(t, e.js, 2*time.Minute)
	return lead
}

// consumerLeader is the NATS node that leads the MSGS consumer, as js sees
// it.
func (e *env) consumerLeader(ctx context.Context, js jetstream.JetStream, consumer string) (*cluster.Proc, error) {
	c, err := js.Consumer(ctx, subjects.StreamMsgs, consumer)
	if err != nil {
		return nil, err
	}
	ci := c.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" {
		return nil, fmt.Errorf("%s/%s has no leader", subjects.StreamMsgs, consumer)
	}
	return e.node(ci.Leader)
}

func killFollower(t *testing.T, e *env) string { return killNATS(t, e, "kill-nats-follower", false) }
func killLeader(t *testing.T, e *env) string   { return killNATS(t, e, "kill-msgs-leader", true) }

// stopLeader freezes the MSGS leader (SIGSTOP) until another node has been
// elected (the election timeout has passed) and then until 100 more sends
// are acked or frozenMore passes, then thaws it (SIGCONT). A frozen node
// keeps its TCP connections open: the natter processes connected to it
// notice only by their NATS client's pings (every 2 s, 2 outstanding: 4-6
// s) and then move to another node; the other nodes close their routes to
// it after 2-3 s (natter nats's route pings).
func stopLeader(t *testing.T, e *env) string {
	name := "sigstop-msgs-leader"
	l := faultLoad(t, e, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lead, err := e.msgsLeader(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	others := e.jsVia(t, lead)
	leads, attached := e.leads(ctx, e.js, lead), e.attachedTo(lead)
	before := l.acked()
	at := l.fault()
	if err := lead.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			_ = lead.Signal(syscall.SIGCONT)
		}
	}()
	var newLead *cluster.Proc
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p, err := e.msgsLeader(ctx, others)
		if err != nil {
			return err
		}
		if p == lead {
			return fmt.Errorf("%s still leads MSGS", p.Name)
		}
		newLead = p
		return nil
	})
	elected := time.Since(at)
	atElection := l.acked() - before
	deadline := time.Now().Add(frozenMore)
	for l.acked() < before+atElection+100 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	duringFreeze := l.acked() - before
	if err := lead.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	thawed = true
	thawAt := time.Now()
	frozen := thawAt.Sub(at)
	caughtUp := e.waitHealthy(t, others, 2*time.Minute)
	l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	stalled := gap(ackTimes(l), at, thawAt)
	dlvStalled := gap(deliveryTimes(l.users), at, thawAt)
	var moved []string
	for _, name := range attached {
		p := e.proc(name)
		if d, ok := reconnectedAfter(p, at); ok && d < frozen {
			moved = append(moved, fmt.Sprintf("%s %v", name, d.Round(time.Millisecond)))
		} else {
			moved = append(moved, name+" not before SIGCONT")
		}
	}
	line := l.report(t, res, fmt.Sprintf("%sSIGSTOP %s (it led %v; %v were connected to it and moved to another node after: %v); %s elected MSGS leader after %v; %d sends acked until then, %d until SIGCONT after %v; longest time without an ack during the freeze %v, without a delivery %v; every replica current %v after SIGCONT",
		gapFigure(stalled, true), lead.Name, leads, attached, moved, newLead.Name, elected.Round(time.Millisecond), atElection, duringFreeze, frozen.Round(time.Millisecond),
		stalled.Round(time.Millisecond), dlvStalled.Round(time.Millisecond), caughtUp.Round(time.Millisecond)))
	checkSendGap(t, stalled)
	return line
}

// stopFanoutLeader freezes (SIGSTOP) a node that leads the FANOUT consumer
// but not MSGS, for frozenFanout, then thaws it. Sends go on; the fanout
// runners' pulls are held by the frozen leader, which answers nothing and
// closes nothing: only the pull's missed heartbeats tell the runners to
// pull again, from FANOUT's new leader. The figure is how long deliveries
// pause.
func stopFanoutLeader(t *testing.T, e *env) string {
	l := faultLoad(t, e, "sigstop-fanout-leader")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lead, err := e.msgsLeader(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	victim := e.fanoutAwayFrom(t, lead)
	others := e.jsVia(t, victim)
	leads, attached := e.leads(ctx, e.js, victim), e.attachedTo(victim)
	at := l.fault()
	if err := victim.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			_ = victim.Signal(syscall.SIGCONT)
		}
	}()
	_, fanoutElected := e.waitElected(t, others, victim, at, false)
	<-time.After(time.Until(at.Add(frozenFanout))) // the fault's length, not a synchronisation
	if err := victim.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	thawed = true
	thawAt := time.Now()
	caughtUp := e.waitHealthy(t, others, 2*time.Minute)
	l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	sendPause := gap(ackTimes(l), at, thawAt)
	dlvPause := gap(deliveryTimes(l.users), at, thawAt)
	maxLag, nLag := maxOf(deliveries(l.users), at, at.Add(10*time.Second))
	elected := at.Add(fanoutElected)
	fanLag, nFan := fanoutLag(e, l, elected, thawAt, attached)
	return l.report(t, res, fmt.Sprintf("SIGSTOP %s for %v (it led %v; %v were connected to it); FANOUT led by another node after %v; longest time without an ack during the freeze %v, without a delivery %v; messages sent in the 10 s after SIGSTOP: send->deliver max %v (n=%d); sent after FANOUT's new leader and before SIGCONT, acked within 1 s, to members on edges not connected to the frozen node: send->deliver max %v (n=%d); every replica current %v after SIGCONT",
		victim.Name, frozenFanout, leads, attached, fanoutElected.Round(time.Millisecond), sendPause.Round(time.Millisecond), dlvPause.Round(time.Millisecond),
		maxLag.Round(time.Millisecond), nLag, fanLag.Round(time.Millisecond), nFan, caughtUp.Round(time.Millisecond)))
}

// frozenFanout is how long stopFanoutLeader keeps the FANOUT leader frozen:
// well past FANOUT's re-election (6-8 s), so that a runner which waits on
// the frozen leader shows as a pause up to the thaw.
const frozenFanout = 20 * time.Second

// frozenMore bounds how long stopLeader keeps the node frozen after the
// election, waiting for 100 more acks.
const frozenMore = 15 * time.Second
