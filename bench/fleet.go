package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// childArg is the hidden first argument that makes Main a generator child.
const childArg = "__child"

// childEnv marks a child process, for binaries (test binaries) whose main
// does not route the arguments to Main: their TestMain checks it.
const childEnv = "NATTER_BENCH_CHILD"

// job is the client side of a scenario, or a slice of it: it runs in this
// process or in a child process (--procs), which receives it as JSON.
type job struct {
	Kind string `json:"kind"`
	// URLs are the edges (natter) or the nats-server WebSocket URL (raw).
	URLs     []string `json:"urls"`
	Secret   []byte   `json:"secret,omitempty"`
	KeyID    string   `json:"kid,omitempty"`
	Audience string   `json:"aud,omitempty"`
	Issuer   string   `json:"iss,omitempty"`
	// Prefix starts every user id (and raw subject) of the run.
	Prefix string `json:"prefix"`
	// From, To is the range of pair or client indexes of this job.
	From int `json:"from"`
	To   int `json:"to"`
	// Rate is the send rate of this job in msg/s; 0 is a closed loop.
	Rate float64 `json:"rate"`
	// Window is the number of sends in flight per sender in a closed loop
	// (natter), or messages between flushes (raw).
	Window       int           `json:"window"`
	Duration     time.Duration `json:"duration"`
	Size         int           `json:"size"`
	SourceAddrs  []string      `json:"source_addrs,omitempty"`
	DialConc     int           `json:"dial_conc"`
	DrainTimeout time.Duration `json:"drain_timeout"`
	// Conv is the group of a fanout.
	Conv string `json:"conv,omitempty"`
	// Sender makes this job run the single sender of a fanout.
	Sender bool `json:"sender,omitempty"`
	// TrafficPairs is how many pairs of a storm job send during the storm.
	TrafficPairs int `json:"traffic_pairs,omitempty"`
	// Presence is storm's --storm-presence: watched contacts per client.
	Presence int `json:"presence,omitempty"`
	// Convs are the conversations history reads from; Reads is how many
	// pages this job reads.
	Convs []string `json:"convs,omitempty"`
	Reads int      `json:"reads,omitempty"`
	// ArchiveOldest, when set, makes history read 200-message pages below
	// it (the hot tier's oldest seq of every conversation of Convs): from
	// the archive.
	ArchiveOldest uint64 `json:"archive_oldest,omitempty"`
	// CPUProfile is where a child writes its CPU profile from go to its
	// result (--gen-cpuprofile); empty means none.
	CPUProfile string `json:"cpuprofile,omitempty"`
}

// jobResult is what a job reports.
type jobResult struct {
	Connected int    `json:"connected"`
	Sent      uint64 `json:"sent"`
	Delivered uint64 `json:"delivered"`
	Errors    uint64 `json:"errors"`
	Lat       *hist  `json:"lat"`
	// AckLat is send->ack (relay senders): the append, before delivery.
	AckLat *hist `json:"ack_lat,omitempty"`
	// CPUNs is the CPU time of the child from go to the result (0 for a
	// job run in the server's process).
	CPUNs int64 `json:"cpu_ns"`
	// StartNS and EndNS are the wall clock of go and of the end of the
	// window (last delivery).
	StartNS     int64   `json:"start_ns"`
	EndNS       int64   `json:"end_ns"`
	DialSeconds float64 `json:"dial_s"`
	// WarmUpSeconds is how long the relay warm-up took (one message per
	// pair into its fresh conversation, before the window).
	WarmUpSeconds float64 `json:"warm_up_s,omitempty"`
	Resumed       int     `json:"resumed"`
	LastResumeNS  int64   `json:"last_resume_ns"`
	Acked         uint64  `json:"acked"`
	Received      uint64  `json:"received"`
	Lost          uint64  `json:"lost"`
	Dropped       int     `json:"dropped"`
	FirstErr      string  `json:"first_err,omitempty"`
	// SourceAddrs counts the job's dials by the local address of the
	// socket.
	SourceAddrs map[string]uint64 `json:"source_addrs,omitempty"`
	// ResumeNS are the wall clock times at which the resumed clients of a
	// storm job were seen resumed; FirstDialNS those of the clients' first
	// dial after mark; Dials and FailedDials count those dials.
	ResumeNS    []int64 `json:"resume_ns,omitempty"`
	FirstDialNS []int64 `json:"first_dial_ns,omitempty"`
	Dials       uint64  `json:"dials,omitempty"`
	// PresenceEvents counts the presence events (pushes and states
	// subscribed again) a storm job's clients got from mark to stop;
	// PresenceSetupSeconds is how long creating the groups and subscribing
	// took.
	PresenceEvents       uint64  `json:"presence_events,omitempty"`
	PresenceSetupSeconds float64 `json:"presence_setup_s,omitempty"`
	FailedDials          uint64  `json:"failed_dials,omitempty"`
}

// live are a job's counters, read by the progress line.
type live struct {
	connected, sent, delivered, errors, resumed atomic.Int64
	// src counts dials by local source address.
	src addrCount
}

// addrCount counts dials by the local address of the socket.
type addrCount struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (a *addrCount) add(c net.Conn) {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]uint64{}
	}
	a.n[ta.IP.String()]++
}

func (a *addrCount) counts() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.n) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(a.n))
	for k, v := range a.n {
		out[k] = v
	}
	return out
}

type snapshot struct {
	Connected int64 `json:"c"`
	Sent      int64 `json:"s"`
	Delivered int64 `json:"d"`
	Errors    int64 `json:"e"`
	Resumed   int64 `json:"r"`
}

func (l *live) snap() snapshot {
	return snapshot{l.connected.Load(), l.sent.Load(), l.delivered.Load(), l.errors.Load(), l.resumed.Load()}
}

func (l *live) set(s snapshot) {
	l.connected.Store(s.Connected)
	l.sent.Store(s.Sent)
	l.delivered.Store(s.Delivered)
	l.errors.Store(s.Errors)
	l.resumed.Store(s.Resumed)
}

// control is a job's side of the coordinator's commands.
// waitExpect waits for the parent's "expect N" (how many messages the
// fan-out sender sent).
func (c *control) waitExpect(ctx context.Context) (uint64, error) {
	select {
	case n := <-c.expect:
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

type control struct {
	ready  func()              // the job's clients are connected
	start  <-chan struct{}     // go
	expect <-chan uint64       // fanout: how many messages the sender sent
	stop   <-chan struct{}     // idle, storm: end the hold
	mark   <-chan struct{}     // storm: take the before-restart snapshot
	marked func()              // storm: the snapshot is taken
	sent   func(n uint64)      // fanout sender: done sending n messages
	events func(string, int64) // free-form progress events (unused by in-process)
}

// waitStart waits for go.
func (c *control) waitStart(ctx context.Context) error {
	select {
	case <-c.start:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runJob runs j with lv and ctl.
func runJob(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	res, err := runJobKind(ctx, j, lv, ctl)
	if res != nil {
		res.SourceAddrs = lv.src.counts()
	}
	return res, err
}

func runJobKind(ctx context.Context, j job, lv *live, ctl *control) (*jobResult, error) {
	switch j.Kind {
	case "relay":
		return runRelayJob(ctx, j, lv, ctl)
	case "rawrelay":
		return runRawRelayJob(ctx, j, lv, ctl)
	case "fanout":
		return runFanoutJob(ctx, j, lv, ctl)
	case "rawfanout":
		return runRawFanoutJob(ctx, j, lv, ctl)
	case "idle":
		return runIdleJob(ctx, j, lv, ctl)
	case "rawidle":
		return runRawIdleJob(ctx, j, lv, ctl)
	case "storm":
		return runStormJob(ctx, j, lv, ctl)
	case "history":
		return runHistoryJob(ctx, j, lv, ctl)
	}
	return nil, fmt.Errorf("bench: unknown job kind %q", j.Kind)
}

// worker runs one job, in this process or in a child.
type worker struct {
	lv      live
	readyCh chan struct{}
	markCh  chan struct{} // closed when the job answered mark
	sentCh  chan uint64
	doneCh  chan struct{}
	res     *jobResult
	err     error
	pid     int // child pid; 0 in-process
	cmd     func(line string)
	closeIn func()
	abort   func() // ends the job at once
}

// fleet is the set of workers of one scenario run.
type fleet struct {
	ws []*worker
}

// startFleet starts one worker per job: in child processes when procs > 0,
// else in goroutines.
func startFleet(ctx context.Context, r *runner, jobs []job, procs bool) (*fleet, error) {
	f := &fleet{}
	for _, j := range jobs {
		var w *worker
		var err error
		if procs {
			w, err = startChild(ctx, r, j)
		} else {
			w = startInproc(ctx, j)
		}
		if err != nil {
			f.kill()
			return nil, err
		}
		f.ws = append(f.ws, w)
	}
	return f, nil
}

func startInproc(ctx context.Context, j job) *worker {
	ctx, cancel := context.WithCancel(ctx)
	w := &worker{abort: cancel, readyCh: make(chan struct{}), markCh: make(chan struct{}), sentCh: make(chan uint64, 1), doneCh: make(chan struct{})}
	start, stop, mark := make(chan struct{}), make(chan struct{}), make(chan struct{})
	expect := make(chan uint64, 1)
	var once1, once2, once3, once4 sync.Once
	w.cmd = func(line string) {
		switch {
		case line == "go":
			once1.Do(func() { close(start) })
		case line == "stop":
			once2.Do(func() { close(stop) })
		case line == "mark":
			once3.Do(func() { close(mark) })
		case strings.HasPrefix(line, "expect "):
			n, _ := strconv.ParseUint(strings.TrimPrefix(line, "expect "), 10, 64)
			expect <- n
		}
	}
	w.closeIn = func() {}
	var readyOnce sync.Once
	ctl := &control{
		ready: func() { readyOnce.Do(func() { close(w.readyCh) }) },
		start: start, stop: stop, expect: expect, mark: mark,
		marked: func() { once4.Do(func() { close(w.markCh) }) },
		sent:   func(n uint64) { w.sentCh <- n },
		events: func(string, int64) {},
	}
	go func() {
		defer close(w.doneCh)
		defer cancel()
		w.res, w.err = runJob(ctx, j, &w.lv, ctl)
	}()
	return w
}

// childMsg is one line a child writes on its stdout.
type childMsg struct {
	T      string     `json:"t"` // ready, p (progress), sent, marked, result, error
	P      *snapshot  `json:"p,omitempty"`
	N      uint64     `json:"n,omitempty"`
	Result *jobResult `json:"result,omitempty"`
	Err    string     `json:"err,omitempty"`
}

func startChild(ctx context.Context, r *runner, j job) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: child: %w", err)
	}
	args := append(append([]string(nil), r.cfg.childPrefix...), childArg)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = r.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start child %s: %w", exe, err)
	}
	w := &worker{readyCh: make(chan struct{}), markCh: make(chan struct{}), sentCh: make(chan uint64, 1), doneCh: make(chan struct{}), pid: cmd.Process.Pid,
		abort: func() { _ = cmd.Process.Kill() }}
	var wmu sync.Mutex
	w.cmd = func(line string) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = io.WriteString(stdin, line+"\n")
	}
	w.closeIn = func() { wmu.Lock(); _ = stdin.Close(); wmu.Unlock() }
	b, _ := json.Marshal(j)
	w.cmd(string(b))
	go func() {
		defer close(w.doneCh)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		var readyOnce, markedOnce sync.Once
		for sc.Scan() {
			var m childMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				fmt.Fprintf(r.stderr, "bench: child %d: %s\n", w.pid, sc.Text())
				continue
			}
			switch m.T {
			case "ready":
				readyOnce.Do(func() { close(w.readyCh) })
			case "marked":
				markedOnce.Do(func() { close(w.markCh) })
			case "p":
				if m.P != nil {
					w.lv.set(*m.P)
				}
			case "sent":
				w.sentCh <- m.N
			case "result":
				w.res = m.Result
			case "error":
				w.err = errors.New(m.Err)
			}
		}
		werr := cmd.Wait()
		if w.res == nil && w.err == nil {
			w.err = fmt.Errorf("bench: child %d ended without a result: %v", w.pid, werr)
		}
	}()
	return w, nil
}

// waitReady waits until every worker is ready (or one fails).
func (f *fleet) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, w := range f.ws {
		select {
		case <-w.readyCh:
		case <-w.doneCh:
			if w.err != nil {
				return w.err
			}
			return errors.New("bench: a generator stopped before it was ready")
		case <-deadline.C:
			s := f.snap()
			return fmt.Errorf("bench: generators not ready after %v (%d connected)", timeout, s.Connected)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fleet) broadcast(line string) {
	for _, w := range f.ws {
		w.cmd(line)
	}
}

// mark sends mark to every worker and waits until each has answered (or
// one fails).
func (f *fleet) mark(ctx context.Context, timeout time.Duration) error {
	f.broadcast("mark")
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, w := range f.ws {
		select {
		case <-w.markCh:
		case <-w.doneCh:
			if w.err != nil {
				return w.err
			}
			return errors.New("bench: a generator stopped before it answered mark")
		case <-deadline.C:
			return fmt.Errorf("bench: generators did not answer mark within %v", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// snap sums the workers' counters.
func (f *fleet) snap() snapshot {
	var s snapshot
	for _, w := range f.ws {
		x := w.lv.snap()
		s.Connected += x.Connected
		s.Sent += x.Sent
		s.Delivered += x.Delivered
		s.Errors += x.Errors
		s.Resumed += x.Resumed
	}
	return s
}

// waitSent waits for the fanout sender's total.
func (f *fleet) waitSent(ctx context.Context) (uint64, error) {
	cases := make([]<-chan uint64, 0, len(f.ws))
	for _, w := range f.ws {
		cases = append(cases, w.sentCh)
	}
	for {
		for i, w := range f.ws {
			select {
			case n := <-cases[i]:
				return n, nil
			case <-w.doneCh:
				if w.err != nil {
					return 0, w.err
				}
			default:
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// wait collects every worker's result.
func (f *fleet) wait(ctx context.Context) ([]*jobResult, error) {
	var out []*jobResult
	var errs []error
	for _, w := range f.ws {
		w.closeIn()
		select {
		case <-w.doneCh:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if w.err != nil {
			errs = append(errs, w.err)
			continue
		}
		out = append(out, w.res)
	}
	return out, errors.Join(errs...)
}

// kill ends every worker at once; wait then returns their errors.
func (f *fleet) kill() {
	for _, w := range f.ws {
		w.abort()
	}
}

// runChild is Main for a generator child: it reads its job (first line of
// stdin) and then commands (go, expect N, stop), and writes ready, progress,
// sent and its result as JSON lines on stdout.
func runChild(ctx context.Context, stdin io.Reader, stdout io.Writer) int {
	raiseFileLimit()
	var outMu sync.Mutex
	emit := func(m childMsg) {
		b, _ := json.Marshal(m)
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = stdout.Write(append(b, '\n'))
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() {
		emit(childMsg{T: "error", Err: "bench child: no job on stdin"})
		return 1
	}
	var j job
	if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
		emit(childMsg{T: "error", Err: "bench child: bad job: " + err.Error()})
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start, stop, mark := make(chan struct{}), make(chan struct{}), make(chan struct{})
	expect := make(chan uint64, 1)
	go func() {
		var startOnce, stopOnce, markOnce sync.Once
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "go":
				startOnce.Do(func() { close(start) })
			case line == "stop":
				stopOnce.Do(func() { close(stop) })
			case line == "mark":
				markOnce.Do(func() { close(mark) })
			case strings.HasPrefix(line, "expect "):
				n, _ := strconv.ParseUint(strings.TrimPrefix(line, "expect "), 10, 64)
				expect <- n
			}
		}
		// The coordinator went away: stop everything.
		stopOnce.Do(func() { close(stop) })
		startOnce.Do(func() { close(start) })
	}()
	var lv live
	var readyOnce, markedOnce sync.Once
	ctl := &control{
		ready:  func() { readyOnce.Do(func() { emit(childMsg{T: "ready"}) }) },
		start:  start,
		stop:   stop,
		expect: expect,
		mark:   mark,
		marked: func() { markedOnce.Do(func() { emit(childMsg{T: "marked"}) }) },
		sent:   func(n uint64) { emit(childMsg{T: "sent", N: n}) },
		events: func(string, int64) {},
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				s := lv.snap()
				emit(childMsg{T: "p", P: &s})
			case <-done:
				return
			}
		}
	}()
	var cpu0 time.Duration
	stopProfile := func() {}
	cpuStart := make(chan struct{})
	go func() {
		select {
		case <-start:
			cpu0 = selfCPU()
			if j.CPUProfile != "" {
				stopProfile = startCPUProfile(j.CPUProfile, os.Stderr)
			}
		case <-done:
		}
		close(cpuStart)
	}()
	res, err := runJob(ctx, j, &lv, ctl)
	close(done)
	<-cpuStart
	stopProfile()
	s := lv.snap()
	emit(childMsg{T: "p", P: &s})
	if err != nil {
		emit(childMsg{T: "error", Err: err.Error()})
		return 1
	}
	res.CPUNs = int64(selfCPU() - cpu0)
	emit(childMsg{T: "result", Result: res})
	return 0
}

// split divides n items over parts jobs: the ranges [from, to).
func split(n, parts int) [][2]int {
	if parts < 1 {
		parts = 1
	}
	parts = min(parts, max(n, 1))
	out := make([][2]int, 0, parts)
	for i := 0; i < parts; i++ {
		out = append(out, [2]int{n * i / parts, n * (i + 1) / parts})
	}
	return out
}
