//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/testenv"
)

// sendTimeout bounds one Send (the SDK re-sends with the same cmid until
// then): a send still unanswered after it counts as unacked, never as lost.
const sendTimeout = 60 * time.Second

// spec sizes a workload.
type spec struct {
	users     int     // one SDK client per user; user i dials edge i%2 first
	groups    int     // groups of groupSize members
	groupSize int     //
	directs   int     // direct conversations
	rate      float64 // sends per second per user, over its conversations in turn
	maxSends  int     // bound on one user's sends
	pad       int     // bytes of padding in every body
	oneEdge   bool    // every user dials edge 1 first
}

// defaultSpec: 10 users in 3 groups of 4 and 4 direct conversations, 8
// msg/s each (80 msg/s in all, ~250 deliveries/s).
var defaultSpec = spec{users: 10, groups: 3, groupSize: 4, directs: 4, rate: 8, maxSends: 2000, pad: 48}

// sample is one latency, of a message sent at at.
type sample struct {
	at time.Time
	d  time.Duration
}

// sent is one send: acked (id and seq) or not (err).
type sent struct {
	conv, from, cmid, id string
	seq                  uint64
	sendAt, ackAt        time.Time
	err                  error
}

// user is one SDK client and what its application received.
type user struct {
	name  string
	c     *client.Client
	convs []string
	edge  int // index in Cluster.Edges of the edge it dials first

	mu        sync.Mutex
	got       map[string]map[uint64]string // conv -> seq -> id, first delivery
	prev      map[string]uint64            // conv -> seq of the previous delivery
	delivered int                          // deliveries of the load's conversations
	dups      int                          // (conv, seq) delivered again
	order     int                          // deliveries that were not prev+1
	lat       []sample                     // send -> deliver, at the send
	recvDone  chan struct{}
}

// load is a workload on fresh users and conversations: senders at a
// bounded rate, every user receiving, and the accounting of what was
// acked, stored and delivered.
type load struct {
	name  string
	e     *env
	sp    spec
	users []*user
	convs map[string][]string // conversation -> members
	ids   []string            // conversation ids
	pad   string

	stop     chan struct{}
	stopOnce sync.Once
	senders  sync.WaitGroup

	mu          sync.Mutex
	acks        []sent
	unacked     []sent
	senderOrder int             // a sender's acks whose seq did not grow in a conversation
	unstored    map[string]bool // acked ids that must not be stored (dead-lettered on purpose)
	faultAt     time.Time       // window of the fault, for the figures
	recoveredAt time.Time
}

// newLoad dials spec.users clients and creates the conversations. The
// clients dial before the conversations exist, so they receive every
// conversation from seq 1.
func newLoad(t *testing.T, e *env, name string, sp spec) *load {
	t.Helper()
	l := &load{name: name, e: e, sp: sp, convs: map[string][]string{}, stop: make(chan struct{}),
		unstored: map[string]bool{}, pad: strings.Repeat("x", sp.pad)}
	urls := e.c.EdgeURLs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range sp.users {
		u := &user{name: fmt.Sprintf("%s-u%d", name, i), got: map[string]map[uint64]string{}, prev: map[string]uint64{}, recvDone: make(chan struct{})}
		first := i % len(urls)
		if sp.oneEdge {
			first = 0
		}
		u.edge = first
		order := append(slices.Clone(urls[first:]), urls[:first]...)
		c, err := client.Dial(ctx, client.Config{URLs: order, Token: e.c.Token(u.name)})
		if err != nil {
			t.Fatalf("dial %s: %v", u.name, err)
		}
		u.c = c
		l.users = append(l.users, u)
		go l.receive(u)
	}
	t.Cleanup(l.close)
	for g := range sp.groups {
		var members []*user
		for k := range sp.groupSize {
			members = append(members, l.users[(g*sp.groupSize+k)%sp.users])
		}
		var others []string
		for _, m := range members[1:] {
			others = append(others, m.name)
		}
		conv, err := members[0].c.CreateGroup(ctx, fmt.Sprintf("%s-g%d", name, g), others...)
		if err != nil {
			t.Fatalf("create group: %v", err)
		}
		l.addConv(conv.ID, members)
	}
	for d := range sp.directs {
		a, b := l.users[d%sp.users], l.users[(d+sp.users/2)%sp.users]
		conv, err := a.c.CreateDirect(ctx, b.name)
		if err != nil {
			t.Fatalf("create direct: %v", err)
		}
		l.addConv(conv.ID, []*user{a, b})
	}
	return l
}

func (l *load) addConv(id string, members []*user) {
	l.ids = append(l.ids, id)
	for _, m := range members {
		l.convs[id] = append(l.convs[id], m.name)
		m.convs = append(m.convs, id)
	}
}

func (l *load) user(name string) *user {
	for _, u := range l.users {
		if u.name == name {
			return u
		}
	}
	return nil
}

// close stops the senders and closes every client.
func (l *load) close() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.senders.Wait()
	for _, u := range l.users {
		_ = u.c.Close()
	}
}

// receive records what the application gets from u's Messages channel.
func (l *load) receive(u *user) {
	defer close(u.recvDone)
	for m := range u.c.Messages() {
		now := time.Now()
		if _, ours := l.convs[m.Conv]; !ours {
			continue
		}
		u.mu.Lock()
		seqs := u.got[m.Conv]
		if seqs == nil {
			seqs = map[uint64]string{}
			u.got[m.Conv] = seqs
		}
		if _, dup := seqs[m.Seq]; dup {
			u.dups++
		} else {
			seqs[m.Seq] = m.ID
			u.delivered++
		}
		if m.Seq != u.prev[m.Conv]+1 {
			u.order++
		}
		u.prev[m.Conv] = m.Seq
		if at, ok := sentAt(m.Body); ok {
			u.lat = append(u.lat, sample{at, now.Sub(at)})
		}
		u.mu.Unlock()
	}
}

// start runs one sender per user over its conversations at spec.rate for
// at most spec.maxSends sends and d.
func (l *load) start(d time.Duration) {
	until := time.Now().Add(d)
	for _, u := range l.users {
		if len(u.convs) == 0 {
			continue
		}
		l.senders.Add(1)
		go l.sendLoop(u, u.name, u.convs, l.sp.rate, l.sp.maxSends, until)
	}
}

// sendLoop sends as sender (a name unique among u's loops) into convs in
// turn, one send at a time, at rate per second, at most max sends and
// until until. Sends that fall behind by more than a second are not
// caught up (no burst after a stall).
func (l *load) sendLoop(u *user, sender string, convs []string, rate float64, max int, until time.Time) {
	defer l.senders.Done()
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	last := map[string]uint64{}
	for i := 0; i < max && time.Now().Before(until); i++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(d):
			}
		} else {
			select {
			case <-l.stop:
				return
			default:
			}
			if d < -time.Second {
				next = time.Now()
			}
		}
		next = next.Add(interval)
		conv := convs[i%len(convs)]
		s := l.send(u, conv, sender+"-"+strconv.Itoa(i), "")
		if s.err == nil {
			if s.seq <= last[conv] {
				l.mu.Lock()
				l.senderOrder++
				l.mu.Unlock()
			}
			last[conv] = s.seq
		}
	}
}

// send sends one message (the send time and extra are in its body) and
// records the outcome.
func (l *load) send(u *user, conv, cmid, extra string) sent {
	at := time.Now()
	body := cmid + " t=" + strconv.FormatInt(at.UnixNano(), 10) + " " + extra + l.pad
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	ack, err := u.c.Send(ctx, conv, body, client.WithCmid(cmid))
	cancel()
	s := sent{conv: conv, from: u.name, cmid: cmid, id: ack.ID, seq: ack.Seq, sendAt: at, ackAt: time.Now(), err: err}
	l.mu.Lock()
	if err != nil {
		l.unacked = append(l.unacked, s)
	} else {
		l.acks = append(l.acks, s)
	}
	l.mu.Unlock()
	return s
}

// sentAt reads the send time out of a body written by send.
func sentAt(body string) (time.Time, bool) {
	_, rest, ok := strings.Cut(body, " t=")
	if !ok {
		return time.Time{}, false
	}
	v, _, _ := strings.Cut(rest, " ")
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// waitAcked waits until n sends are acked in all.
func (l *load) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	testenv.CheckFor(t, timeout, 50*time.Millisecond, func() error {
		if got := l.acked(); got < n {
			return fmt.Errorf("%d of %d sends acked", got, n)
		}
		return nil
	})
}

// fault and recovered mark the window of the fault for the figures.
func (l *load) fault() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faultAt = time.Now()
	return l.faultAt
}

func (l *load) recovered() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recoveredAt = time.Now()
	return l.recoveredAt
}

// row is a stored message, as much as the accounting needs.
type row struct {
	ID   string `bson:"_id"`
	Conv string `bson:"conv"`
	Seq  uint64 `bson:"seq"`
}

// rows reads the stored messages of the load's conversations.
func (l *load) rows(ctx context.Context) ([]row, error) {
	cur, err := l.e.msgs.Find(ctx, bson.D{{Key: "conv", Value: bson.D{{Key: "$in", Value: l.ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "conv", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var rs []row
	err = cur.All(ctx, &rs)
	return rs, err
}

// duplicates counts the surplus rows per group key (an aggregation in the
// store): rows with the same (conv, seq), or the same (conv, from, cmid),
// which is one message id.
func duplicates(ctx context.Context, msgs *mongo.Collection, match bson.D, key bson.D) (int, error) {
	pipe := mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: key}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$match", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 1}}}}}},
	}
	cur, err := msgs.Aggregate(ctx, pipe)
	if err != nil {
		return 0, fmt.Errorf("aggregate duplicates: %w", err)
	}
	var groups []struct {
		N int `bson:"n"`
	}
	if err := cur.All(ctx, &groups); err != nil {
		return 0, err
	}
	surplus := 0
	for _, g := range groups {
		surplus += g.N - 1
	}
	return surplus, nil
}

var (
	keyConvSeq = bson.D{{Key: "conv", Value: "$conv"}, {Key: "seq", Value: "$seq"}}
	keyMsgID   = bson.D{{Key: "conv", Value: "$conv"}, {Key: "from", Value: "$from"}, {Key: "cmid", Value: "$cmid"}}
)

// result is the accounting of one scenario.
type result struct {
	acked, stored, delivered     int
	lost, lostStore, lostDeliver int
	dupStored, dupDelivered      int
	order, unacked               int
	deadLettered                 int
}

// check is what is still missing: acked messages not stored (or stored
// under another id) and not delivered to some member.
func (l *load) check(ctx context.Context) (result, error) {
	rs, err := l.rows(ctx)
	if err != nil {
		return result{}, err
	}
	stored := map[string]map[uint64][]string{}
	for _, r := range rs {
		if stored[r.Conv] == nil {
			stored[r.Conv] = map[uint64][]string{}
		}
		stored[r.Conv][r.Seq] = append(stored[r.Conv][r.Seq], r.ID)
	}
	l.mu.Lock()
	acks := slices.Clone(l.acks)
	res := result{acked: len(l.acks), unacked: len(l.unacked), order: l.senderOrder, stored: len(rs)}
	unstored := l.unstored
	l.mu.Unlock()
	for _, ids := range stored {
		for _, v := range ids {
			res.dupStored += len(v) - 1
		}
	}
	for _, u := range l.users {
		u.mu.Lock()
		res.delivered += u.delivered
		res.dupDelivered += u.dups
		res.order += u.order
		u.mu.Unlock()
	}
	for _, a := range acks {
		lost := false
		if unstored[a.id] {
			res.deadLettered++
			if len(stored[a.conv][a.seq]) > 0 {
				return res, fmt.Errorf("%s (%s:%d) is stored although it was dead-lettered", a.id, a.conv, a.seq)
			}
		} else if ids := stored[a.conv][a.seq]; len(ids) == 0 || ids[0] != a.id {
			res.lostStore++
			lost = true
		}
		for _, m := range l.convs[a.conv] {
			u := l.user(m)
			u.mu.Lock()
			id, ok := u.got[a.conv][a.seq]
			u.mu.Unlock()
			if !ok || id != a.id {
				res.lostDeliver++
				lost = true
			}
		}
		if lost {
			res.lost++
		}
	}
	return res, nil
}

// finish stops the senders, waits (up to timeout) until every acked
// message is stored and delivered to every member, and returns the
// accounting, the duplicate counts from the store's aggregation included.
func (l *load) finish(t *testing.T, timeout time.Duration) result {
	t.Helper()
	l.stopOnce.Do(func() { close(l.stop) })
	done := make(chan struct{})
	go func() { l.senders.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(sendTimeout + 10*time.Second):
		t.Fatal("senders did not stop")
	}
	deadline := time.Now().Add(timeout)
	var res result
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := l.check(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		res = r
		if res.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	match := bson.D{{Key: "conv", Value: bson.D{{Key: "$in", Value: l.ids}}}}
	for _, key := range []bson.D{keyConvSeq, keyMsgID} {
		n, err := duplicates(ctx, l.e.msgs, match, key)
		if err != nil {
			t.Fatal(err)
		}
		res.dupStored = max(res.dupStored, n)
	}
	return res
}

// report prints the scenario's line and asserts the invariants; it
// returns the line.
func (l *load) report(t *testing.T, res result, extra string) string {
	t.Helper()
	l.mu.Lock()
	var ackLat []sample
	for _, a := range l.acks {
		ackLat = append(ackLat, sample{a.sendAt, a.ackAt.Sub(a.sendAt)})
	}
	unacked := slices.Clone(l.unacked)
	from, to := l.faultAt, l.recoveredAt
	l.mu.Unlock()
	var dlvLat []sample
	for _, u := range l.users {
		u.mu.Lock()
		dlvLat = append(dlvLat, u.lat...)
		u.mu.Unlock()
	}
	line := fmt.Sprintf("acked=%d stored=%d delivered=%d lost=%d duplicate-stored=%d duplicate-delivered=%d order-violations=%d unacked=%d",
		res.acked, res.stored, res.delivered, res.lost, res.dupStored, res.dupDelivered, res.order, res.unacked)
	if res.deadLettered > 0 {
		line += fmt.Sprintf(" dead-lettered=%d", res.deadLettered)
	}
	line += fmt.Sprintf(" | send->ack %s | send->deliver %s", latencies(ackLat, time.Time{}, time.Time{}), latencies(dlvLat, time.Time{}, time.Time{}))
	if !from.IsZero() {
		if to.IsZero() {
			to = time.Now()
		}
		line += fmt.Sprintf(" | messages sent during the fault (%.1fs): send->ack %s, send->deliver %s",
			to.Sub(from).Seconds(), latencies(ackLat, from, to), latencies(dlvLat, from, to))
	}
	if extra != "" {
		line += " | " + extra
	}
	t.Logf("CHAOS %s: %s", l.name, line)
	if res.lost > 0 {
		t.Errorf("lost %d acked messages (%d not stored, %d member deliveries missing)", res.lost, res.lostStore, res.lostDeliver)
	}
	if res.dupStored > 0 {
		t.Errorf("%d duplicate rows stored", res.dupStored)
	}
	if res.dupDelivered > 0 {
		t.Errorf("%d messages delivered twice to the application", res.dupDelivered)
	}
	if res.order > 0 {
		t.Errorf("%d order violations", res.order)
	}
	if res.acked == 0 {
		t.Error("nothing acked: the scenario proves nothing")
	}
	for i, s := range unacked {
		if i == 3 {
			break
		}
		t.Logf("unacked send %s -> %s: %v", s.cmid, s.conv, s.err)
	}
	return line
}

// latencies formats p50/p99/max of the samples taken in [from, to) (all
// of them when from is zero).
func latencies(ss []sample, from, to time.Time) string {
	var ds []time.Duration
	for _, s := range ss {
		if from.IsZero() || (!s.at.Before(from) && s.at.Before(to)) {
			ds = append(ds, s.d)
		}
	}
	if len(ds) == 0 {
		return "n=0"
	}
	slices.Sort(ds)
	return fmt.Sprintf("p50=%s p99=%s max=%s (n=%d)", ms(pct(ds, 0.50)), ms(pct(ds, 0.99)), ms(ds[len(ds)-1]), len(ds))
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// p99Of is the p99 of the samples taken in [from, to).
func p99Of(ss []sample, from, to time.Time) (time.Duration, int) {
	var ds []time.Duration
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) {
			ds = append(ds, s.d)
		}
	}
	slices.Sort(ds)
	return pct(ds, 0.99), len(ds)
}

// deliveries returns every send -> deliver sample of the given users.
func deliveries(us []*user) []sample {
	var out []sample
	for _, u := range us {
		u.mu.Lock()
		out = append(out, u.lat...)
		u.mu.Unlock()
	}
	return out
}
