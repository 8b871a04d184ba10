//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/natter-im/natter/cmd/natter/cluster"
)

// killNATS kills one NATS node (the MSGS leader or a follower) under load,
// keeps it down while the load goes on, brings it back and waits until
// every replica is current again.
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
		for _, p := range e.c.NATS {
			if p != lead {
				victim = p
				break
			}
		}
	}
	others := e.jsVia(t, victim)
	leads, attached := e.leads(ctx, e.js, victim), e.attachedTo(victim)
	at := l.fault()
	victim.Kill()
	var elected time.Duration
	if leader {
		checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p, err := e.msgsLeader(ctx, others)
			if err != nil {
				return err
			}
			if p == victim {
				return fmt.Errorf("%s still leads MSGS", p.Name)
			}
			return nil
		})
		elected = time.Since(at)
	}
	n := l.acked()
	l.waitAcked(t, n+100, 60*time.Second)
	down := time.Since(at)
	restart := time.Now()
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(restart)
	caughtUp := e.waitHealthy(t, others, 2*time.Minute)
	l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	role := "follower"
	if leader {
		role = fmt.Sprintf("MSGS leader; new leader elected after %v", elected.Round(time.Millisecond))
	}
	return l.report(t, res, fmt.Sprintf("kill -9 %s (%s; it led %v; %v were connected to it); 100 sends acked while it was down (down %v); ready %v after its restart, every replica current %v later",
		victim.Name, role, leads, attached, down.Round(time.Millisecond), restarted.Round(time.Millisecond), caughtUp.Round(time.Millisecond)))
}

func killFollower(t *testing.T, e *env) string { return killNATS(t, e, "kill-nats-follower", false) }
func killLeader(t *testing.T, e *env) string   { return killNATS(t, e, "kill-msgs-leader", true) }

// stopLeader freezes the MSGS leader (SIGSTOP) until another node has been
// elected (the election timeout has passed) and then until 100 more sends
// are acked or frozenMore passes, then thaws it (SIGCONT). A frozen node
// keeps its TCP connections open: the natter processes connected to it
// wait on it (until their NATS client's ping timeout, minutes) instead of
// moving to another node.
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
	checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
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
	frozen := time.Since(at)
	caughtUp := e.waitHealthy(t, others, 2*time.Minute)
	l.recovered()
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	return l.report(t, res, fmt.Sprintf("SIGSTOP %s (it led %v; %v were connected to it); %s elected MSGS leader after %v; %d sends acked until then, %d until SIGCONT after %v; every replica current %v after SIGCONT",
		lead.Name, leads, attached, newLead.Name, elected.Round(time.Millisecond), atElection, duringFreeze, frozen.Round(time.Millisecond), caughtUp.Round(time.Millisecond)))
}

// frozenMore bounds how long stopLeader keeps the node frozen after the
// election, waiting for 100 more acks.
const frozenMore = 15 * time.Second
