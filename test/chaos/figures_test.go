//go:build chaos

package chaos

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/testenv"
)

// ackTimes returns when each acked send of l was acked.
func ackTimes(l *load) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]time.Time, 0, len(l.acks))
	for _, a := range l.acks {
		out = append(out, a.ackAt)
	}
	return out
}

// deliveryTimes returns when each delivery to the given users' applications
// happened.
func deliveryTimes(us []*user) []time.Time {
	var out []time.Time
	for _, s := range deliveries(us) {
		out = append(out, s.at.Add(s.d))
	}
	return out
}

// gap is the longest time in [from, to] without an event: between from and
// the first event, between two events, or between the last one and to.
func gap(events []time.Time, from, to time.Time) time.Duration {
	var in []time.Time
	for _, t := range events {
		if !t.Before(from) && !t.After(to) {
			in = append(in, t)
		}
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	longest, prev := time.Duration(0), from
	for _, t := range append(in, to) {
		longest = max(longest, t.Sub(prev))
		prev = t
	}
	return longest
}

// maxOf is the largest of the samples taken in [from, to) and their count.
func maxOf(ss []sample, from, to time.Time) (time.Duration, int) {
	var m time.Duration
	n := 0
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) {
			m = max(m, s.d)
			n++
		}
	}
	return m, n
}

// waitDeliveredUntil waits until every acked message sent before until has
// reached every member of its conversation.
func (l *load) waitDeliveredUntil(t *testing.T, until time.Time, timeout time.Duration) {
	t.Helper()
	testenv.CheckFor(t, timeout, 100*time.Millisecond, func() error {
		l.mu.Lock()
		acks := slices.Clone(l.acks)
		l.mu.Unlock()
		missing := 0
		for _, a := range acks {
			if !a.sendAt.Before(until) {
				continue
			}
			for _, m := range l.convs[a.conv] {
				u := l.user(m)
				u.mu.Lock()
				_, ok := u.got[a.conv][a.seq]
				u.mu.Unlock()
				if !ok {
					missing++
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d deliveries of messages sent before %s missing", missing, until.Format(time.TimeOnly))
		}
		return nil
	})
}

// proc returns the base process named name, or nil.
func (e *env) proc(name string) *cluster.Proc {
	for _, p := range e.base {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// reconnectedAfter reads p's log for its first `msg="nats reconnected"`
// after at and returns how long after at it was logged.
func reconnectedAfter(p *cluster.Proc, at time.Time) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	f, err := os.Open(p.LogPath)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="nats reconnected"`) {
			continue
		}
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || ts.Before(at) {
			continue
		}
		return ts.Sub(at), true
	}
	return 0, false
}

// cpuSnap is a reading of the machine's CPU time and of some processes'.
type cpuSnap struct {
	at         time.Time
	busy, all  float64         // machine: busy and total jiffies over every core
	procs      map[int]float64 // pid -> utime+stime in jiffies
	cores      int
	clusterPID map[int]bool
}

// clockTicks is the kernel's USER_HZ (jiffies per second in /proc), 100 on
// Linux.
const clockTicks = 100

// cpuNow reads /proc/stat and /proc/<pid>/stat of the cluster's running
// processes and of this test process.
func (e *env) cpuNow() cpuSnap {
	s := cpuSnap{at: time.Now(), procs: map[int]float64{}, clusterPID: map[int]bool{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[0] == "cpu" {
				for i, v := range f[1:] {
					x, _ := strconv.ParseFloat(v, 64)
					s.all += x
					if i != 3 && i != 4 { // idle, iowait
						s.busy += x
					}
				}
			} else if len(f) > 0 && strings.HasPrefix(f[0], "cpu") {
				s.cores++
			}
		}
	}
	pids := []int{os.Getpid()}
	for _, p := range e.c.Procs() {
		if p.Running() {
			pids = append(pids, p.PID())
			s.clusterPID[p.PID()] = true
		}
	}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in parens.
		_, rest, ok := strings.Cut(string(b), ") ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			s.procs[pid] = u + st
		}
	}
	return s
}

// cpuSince describes the CPU use between two readings: the machine's busy
// share of all its cores, and how many cores the cluster's processes and
// this test process (the SDK clients) used.
func cpuSince(a, b cpuSnap) string {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || b.all <= a.all {
		return "cpu n/a"
	}
	var cluster, test float64
	for pid, v := range b.procs {
		d := (v - a.procs[pid]) / clockTicks / secs
		if b.clusterPID[pid] {
			cluster += d
		} else if pid == os.Getpid() {
			test += d
		}
	}
	return fmt.Sprintf("machine CPU %.0f%% busy of %d cores, cluster processes %.2f cores, test process (SDK clients) %.2f cores",
		100*(b.busy-a.busy)/(b.all-a.all), b.cores, cluster, test)
}

// fanoutLag is the largest send -> deliver of the messages sent in
// [from, to) whose send was acked within a second, to members whose edge
// is not in skip: the delay the fanout role adds, without the sends that
// stalled or the edges that could not deliver (their NATS connection stuck
// on a frozen node).
func fanoutLag(e *env, l *load, from, to time.Time, skip []string) (time.Duration, int) {
	quick := map[int64]bool{} // send times in ns, as the bodies carry them
	l.mu.Lock()
	for _, a := range l.acks {
		if a.ackAt.Sub(a.sendAt) < time.Second {
			quick[a.sendAt.UnixNano()] = true
		}
	}
	l.mu.Unlock()
	var ss []sample
	for _, u := range l.users {
		if slices.Contains(skip, e.c.Edges[u.edge].Name) {
			continue
		}
		u.mu.Lock()
		for _, s := range u.lat {
			if quick[s.at.UnixNano()] {
				ss = append(ss, s)
			}
		}
		u.mu.Unlock()
	}
	return maxOf(ss, from, to)
}
