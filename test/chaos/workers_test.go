//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// persistConsumer reads the PERSIST consumer's state.
func (e *env) persistConsumer(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c, err := e.js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// killAfterBatch is the batch write after which the added persist replica
// kills itself.
const killAfterBatch = 10

var killLine = regexp.MustCompile(`fault injection: killing this process.* batch=(\d+) n=(\d+) first=(\S+) last=(\S+)`)

// killPersistAfterWrite adds a persist replica whose testing hook kills it
// (SIGKILL, by itself) right after its tenth batch write to MongoDB and
// before the acks (not the third: at 80 msg/s shared with two other
// replicas, three one-message batches can be written before the harness's
// readiness poll, every 100 ms, has seen the new process ready). The rows of that batch are in the store, unacked: the
// other replicas get the batch again after AckWait and must not store it
// twice.
func killPersistAfterWrite(t *testing.T, e *env) string {
	l := faultLoad(t, e, "kill-persist-after-write")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := e.c.AddWorkerEnv(ctx, []string{"NATTER_FAULT=persist-fail-body:" + poisonMarker + ",persist-kill-after-write:" + strconv.Itoa(killAfterBatch)}, "persist")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not kill itself after batch write %d", p.Name, killAfterBatch)
	}
	at := l.fault()
	ci, err := e.persistConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deliveredBefore := ci.Delivered.Stream
	log, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	m := killLine.FindStringSubmatch(string(log))
	if m == nil {
		t.Fatalf("%s exited (%v) without the fault's log line:\n%s", p.Name, p.ExitErr(), p.LogTail(20))
	}
	if err := p.ExitErr(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s exit: %v, want killed", p.Name, err)
	}
	// Everything delivered before the kill, the dead replica's unacked
	// batch included, is acked once the ack floor passes it: the batch was
	// redelivered to the other replicas after AckWait.
	testenv.CheckFor(t, 2*time.Minute, 250*time.Millisecond, func() error {
		ci, err := e.persistConsumer(ctx)
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < deliveredBefore {
			return fmt.Errorf("PERSIST ack floor %d, below %d delivered before the kill", ci.AckFloor.Stream, deliveredBefore)
		}
		return nil
	})
	l.recovered()
	redelivered := time.Since(at)
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	return l.report(t, res, fmt.Sprintf("%s killed itself after batch %s (%s messages, %s..%s) was written and before its acks; PERSIST's ack floor passed everything delivered before the kill %v later (AckWait %v)",
		p.Name, m[1], m[2], m[3], m[4], redelivered.Round(time.Millisecond), ackWait))
}

// watchStore polls the store every `every` and records when each message
// of the load was first seen there, until stop is called.
func (l *load) watchStore(every time.Duration) (stop func() map[string]time.Time) {
	seen := map[string]time.Time{}
	var mu sync.Mutex
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rs, err := l.rows(ctx)
			cancel()
			now := time.Now()
			if err == nil {
				mu.Lock()
				for _, r := range rs {
					if _, ok := seen[r.ID]; !ok {
						seen[r.ID] = now
					}
				}
				mu.Unlock()
			}
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
		}
	}()
	return func() map[string]time.Time {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// poisonMessage sends one message the persist role always fails (a
// testing hook: the body holds poisonMarker). It must be retried until
// MaxDeliver and dead-lettered on im.dlq.persist, while every other
// message is stored and delivered without waiting for it. The poison
// message itself is delivered: only the archive refuses it.
func poisonMessage(t *testing.T, e *env) string {
	l := faultLoad(t, e, "poison-message")
	stopWatch := l.watchStore(200 * time.Millisecond)
	l.waitAcked(t, l.acked()+150, 60*time.Second)
	u := l.users[0]
	s := l.send(u, u.convs[0], u.name+"-poison", poisonMarker+" ")
	if s.err != nil {
		t.Fatal(s.err)
	}
	l.mu.Lock()
	l.unstored[s.id] = true
	l.faultAt = s.ackAt
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dlq, err := e.js.Stream(ctx, subjects.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var dead *jetstream.RawStreamMsg
	testenv.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		m, err := dlq.GetLastMsgForSubject(ctx, subjects.DLQ("persist"))
		if err != nil {
			return err
		}
		if m.Header.Get(runner.HeaderDLQMsgID) != s.id {
			return fmt.Errorf("last persist dead letter is %q", m.Header.Get(runner.HeaderDLQMsgID))
		}
		dead = m
		return nil
	})
	deadAt := l.recovered()
	toDLQ := deadAt.Sub(s.ackAt)
	if got := dead.Header.Get(runner.HeaderDLQDeliveries); got != strconv.Itoa(maxDeliver) {
		t.Errorf("dead-lettered after %s deliveries, want MaxDeliver %d", got, maxDeliver)
	}
	if r := dead.Header.Get(runner.HeaderDLQReason); !strings.Contains(r, "max deliveries") {
		t.Errorf("dead-letter reason %q", r)
	}
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	seen := stopWatch()

	// Other messages: store lag (ack -> first seen in the store, polled
	// every 200 ms) and send -> deliver, before the poison message and
	// while it was being retried.
	l.mu.Lock()
	var lag []sample
	for _, a := range l.acks {
		if at, ok := seen[a.id]; ok && a.id != s.id {
			lag = append(lag, sample{a.sendAt, at.Sub(a.ackAt)})
		}
	}
	first := l.acks[0].sendAt
	l.mu.Unlock()
	dlv := deliveries(l.users)
	lagBefore, nb := p99Of(lag, first, s.sendAt)
	lagDuring, nd := p99Of(lag, s.ackAt, deadAt)
	dlvBefore, _ := p99Of(dlv, first, s.sendAt)
	dlvDuring, _ := p99Of(dlv, s.ackAt, deadAt)
	maxLag := time.Duration(0)
	for _, x := range lag {
		if !x.at.Before(s.ackAt) && x.at.Before(deadAt) {
			maxLag = max(maxLag, x.d)
		}
	}
	if nb == 0 || nd == 0 {
		t.Fatalf("no store-lag samples before (%d) or during (%d) the retries", nb, nd)
	}
	if lagDuring > max(3*lagBefore, lagBefore+time.Second) {
		t.Errorf("store lag p99 of other messages while the poison message was retried: %v, before: %v", lagDuring, lagBefore)
	}
	if maxLag >= toDLQ {
		t.Errorf("another message waited %v to be stored, as long as the poison message took to be dead-lettered (%v)", maxLag, toDLQ)
	}
	if dlvDuring > max(3*dlvBefore, dlvBefore+100*time.Millisecond) {
		t.Errorf("send->deliver p99 of other messages while the poison message was retried: %v, before: %v", dlvDuring, dlvBefore)
	}
	return l.report(t, res, fmt.Sprintf("poison %s dead-lettered on %s after %s deliveries, %v after its ack; other messages' store lag p99 %s before, %s during the retries (max %s, %d samples); their send->deliver p99 %s before, %s during",
		s.id, subjects.DLQ("persist"), dead.Header.Get(runner.HeaderDLQDeliveries), toDLQ.Round(time.Millisecond),
		ms(lagBefore), ms(lagDuring), ms(maxLag), nd, ms(dlvBefore), ms(dlvDuring)))
}

// consumerReset replays the whole MSGS stream into the store twice, once a
// load is stored: first by resetting the PERSIST consumer in place to the
// stream's first sequence (JetStream's consumer reset: the running
// replicas replay at once), then by deleting it and recreating it with
// "natter streams apply" (it starts at the first message). The workers
// are not restarted: while the consumer is gone their persist runners are
// not consuming and /readyz answers 503; they must find the recreated
// consumer by themselves. Each replay must leave the store with exactly the
// rows it had, and no duplicates.
func consumerReset(t *testing.T, e *env) string {
	l := faultLoad(t, e, "consumer-reset-replay")
	l.waitAcked(t, l.acked()+100, 60*time.Second)
	res := l.finish(t, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	all := bson.D{}
	rowsBefore, err := e.msgs.CountDocuments(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	l.fault()
	check := func(how string) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s: store checked in %v", how, time.Since(start).Round(time.Millisecond)) }()
		rows, err := e.msgs.CountDocuments(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		if rows != rowsBefore {
			t.Errorf("%s: the replay changed the row count: %d before, %d after", how, rowsBefore, rows)
		}
		for _, key := range []bson.D{keyConvSeq, keyMsgID} {
			q := time.Now()
			n, err := duplicates(ctx, e.msgs, all, key)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: duplicates by %v: %d (%v)", how, key, n, time.Since(q).Round(time.Millisecond))
			if n > 0 {
				t.Errorf("%s: %d duplicate rows in the whole store after the replay (key %v)", how, n, key)
			}
		}
	}

	// 1. Reset in place.
	start := time.Now()
	if _, err := e.js.ResetConsumerToSequence(ctx, subjects.StreamMsgs, subjects.ConsumerPersist, st.FirstSeq); err != nil {
		t.Fatalf("reset PERSIST to %d: %v", st.FirstSeq, err)
	}
	e.waitReplayed(t, ctx, st.LastSeq)
	inPlace := time.Since(start)
	check("reset in place")

	// 2. Delete and streams apply; the running workers pick the new
	// consumer up.
	var workers []*cluster.Proc
	pids := map[*cluster.Proc]int{}
	for _, p := range e.base {
		if p.Kind == cluster.KindWorker && slices.Contains(p.Roles, "persist") {
			workers = append(workers, p)
			pids[p] = p.PID()
		}
	}
	start = time.Now()
	if err := e.js.DeleteConsumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		for _, p := range workers {
			if err := persistConsuming(p, false); err != nil {
				return err
			}
		}
		return nil
	})
	noticed := time.Since(start)
	if _, err := e.persistConsumer(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("PERSIST after the delete, with the workers looking for it: %v, want not found (a worker must not create it)", err)
	}
	applyAt := time.Now()
	cmd := exec.CommandContext(ctx, binary, "streams", "apply", "--nats-url", e.c.NATSURL(), "--replicas", strconv.Itoa(e.c.Opts.StreamReplicas))
	cmd.Env = append(os.Environ(), e.c.Opts.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "consumer "+subjects.StreamMsgs+"/"+subjects.ConsumerPersist) {
		t.Fatalf("streams apply: %v\n%s", err, out)
	}
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		for _, p := range workers {
			if err := persistConsuming(p, true); err != nil {
				return err
			}
		}
		return nil
	})
	resumed := time.Since(applyAt)
	e.waitReplayed(t, ctx, st.LastSeq)
	recreated := time.Since(start)
	for _, p := range workers {
		if p.PID() != pids[p] || !p.Running() {
			t.Errorf("%s was restarted (pid %d, was %d)", p.Name, p.PID(), pids[p])
		}
	}
	check("delete and apply")
	l.recovered()
	after, err := l.check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res.stored, res.lost = after.stored, max(res.lost, after.lost)
	var names []string
	for _, p := range workers {
		names = append(names, p.Name)
	}
	return l.report(t, res, fmt.Sprintf("the whole MSGS stream (%d messages, seq %d..%d) replayed into the store twice: reset in place in %v; deleted (the persist runners of %v stopped consuming, /readyz 503, within %v), recreated by streams apply, consumed again by the same processes %v after the apply, replayed %v after the delete; rows in the store %d before, the same after each",
		st.Msgs, st.FirstSeq, st.LastSeq, inPlace.Round(time.Millisecond), names, noticed.Round(time.Millisecond), resumed.Round(time.Millisecond), recreated.Round(time.Millisecond), rowsBefore))
}

// persistConsuming checks a worker's persist runner through its admin
// endpoint: natter_worker_consuming{role="persist"} and /readyz agree with
// want.
func persistConsuming(p *cluster.Proc, want bool) error {
	v, err := metric(p.HTTP, `natter_worker_consuming{role="persist"}`)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.HTTP + "/readyz")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ready := resp.StatusCode == http.StatusOK
	if (v == 1) != want || ready != want {
		return fmt.Errorf("%s: natter_worker_consuming{role=\"persist\"} %v, /readyz %d %s; want consuming %v", p.Name, v, resp.StatusCode, body, want)
	}
	return nil
}

// waitReplayed waits until the PERSIST consumer has acked (or dead-lettered)
// everything up to lastSeq and has nothing pending.
func (e *env) waitReplayed(t *testing.T, ctx context.Context, lastSeq uint64) {
	t.Helper()
	testenv.CheckFor(t, 4*time.Minute, 250*time.Millisecond, func() error {
		ci, err := e.persistConsumer(ctx)
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < lastSeq || ci.NumAckPending > 0 || ci.NumPending > 0 {
			return fmt.Errorf("PERSIST replay: ack floor %d of %d, %d unacked, %d pending", ci.AckFloor.Stream, lastSeq, ci.NumAckPending, ci.NumPending)
		}
		return nil
	})
}
