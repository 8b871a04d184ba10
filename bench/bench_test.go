package bench_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/bench"
	"github.com/natter-im/natter/internal/testbin"
)

// natterBin is the natter binary built once for the tests that run natter
// as its own process.
var natterBin string

// TestMain lets the test binary serve as a generator child (--procs): the
// bench re-executes the current binary with NATTER_BENCH_CHILD=1. Else it
// builds the natter binary.
func TestMain(m *testing.M) {
	if os.Getenv("NATTER_BENCH_CHILD") == "1" {
		os.Exit(bench.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	testbin.Main(m, "../cmd/natter", &natterBin)
}

// run runs one tiny scenario and returns its last result.
func run(t *testing.T, cfg bench.Config) *bench.Result {
	t.Helper()
	rs := runAll(t, cfg)
	return rs[len(rs)-1]
}

// runAll runs one tiny scenario and returns its results.
func runAll(t *testing.T, cfg bench.Config) []*bench.Result {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Quiet = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", cfg.Scenario, err)
	}
	if len(rep.Results) == 0 {
		t.Fatalf("%s: no result", cfg.Scenario)
	}
	if rep.Machine.Cores < 1 || rep.Machine.Go == "" {
		t.Errorf("machine not filled: %+v", rep.Machine)
	}
	return rep.Results
}

func checkDelivered(t *testing.T, r *bench.Result) {
	t.Helper()
	if r.Errors != 0 || r.Sent == 0 || r.Delivered != r.Sent || r.Throughput <= 0 || r.Seconds <= 0 {
		t.Errorf("%s: sent %d delivered %d errors %d throughput %v over %v s; notes %v", r.Name, r.Sent, r.Delivered, r.Errors, r.Throughput, r.Seconds, r.Notes)
	}
	if r.Latency == nil || r.Latency.Count == 0 || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.Latency.P999 < r.Latency.P99 {
		t.Errorf("%s: latency %+v", r.Name, r.Latency)
	}
}

func baseline(t *testing.T, r *bench.Result, name string) *bench.Result {
	t.Helper()
	for _, b := range r.Baselines {
		if strings.Contains(b.Name, name) {
			if b.Throughput <= 0 || b.Errors != 0 {
				t.Errorf("baseline %s: throughput %v, errors %d", b.Name, b.Throughput, b.Errors)
			}
			return b
		}
	}
	t.Fatalf("%s: no baseline %q among %d", r.Name, name, len(r.Baselines))
	return nil
}

func TestRelay(t *testing.T) {
	r := run(t, bench.Config{Scenario: "relay", Conns: 4, Duration: time.Second})
	checkDelivered(t, r)
	if r.PersistPending < 0 {
		t.Errorf("PERSIST backlog not read: %d", r.PersistPending)
	}
	if r.CPU == nil || r.CPU.Split || r.CPU.ServerUsPerMsg <= 0 || r.CPU.Server == "" || r.CPU.Count != float64(r.Delivered) {
		t.Errorf("cpu %+v, want an unsplit total over %d messages", r.CPU, r.Delivered)
	}
	if r.Acked != r.Delivered || r.Lost != 0 {
		t.Errorf("acked %d delivered %d lost %d", r.Acked, r.Delivered, r.Lost)
	}
	if g := r.CPU.ServerRuntime; g == nil || g.SchedCount == 0 || g.SchedP99Ms < g.SchedP50Ms || g.SchedP999Ms < g.SchedP99Ms || g.GCPauseMaxMs < g.GCPauseP99Ms {
		t.Errorf("in-process Go runtime figures %+v, want scheduler waits counted, quantiles in order", g)
	}
	checkPersistDrain(t, r)
	raw := baseline(t, r, "pub/sub")
	if raw.Delivered != raw.Sent {
		t.Errorf("raw pub/sub: sent %d delivered %d", raw.Sent, raw.Delivered)
	}
	baseline(t, r, "JetStream")
	if len(r.Ratios) < 2 || len(r.Checks) == 0 {
		t.Errorf("ratios %v checks %v", r.Ratios, r.Checks)
	}
}

// TestRelayRoles: --roles runs the in-process natter dev with those roles
// only; without persist nothing the relay sent reaches MongoDB.
func TestRelayRoles(t *testing.T) {
	r := run(t, bench.Config{Scenario: "relay", Conns: 4, Duration: time.Second, NoBaseline: true, Roles: []string{"conversations", "fanout"}})
	checkDelivered(t, r)
	if r.Acked == 0 || r.PersistPending < int64(r.Acked) {
		t.Errorf("%d acked, %d behind in MongoDB: want all of them (no persist role)", r.Acked, r.PersistPending)
	}
	// Nothing of that backlog is stored in this process: no drain to wait
	// for or count, and the report says so.
	pd := r.CPU.PersistDrain
	if pd == nil || !strings.Contains(pd.Skipped, "--roles") || pd.ServerUs != 0 || pd.ServerUsPerMsg != r.CPU.ServerUsPerMsg {
		t.Errorf("persist drain %+v, want it skipped for --roles without persist, the window's %v us/msg", pd, r.CPU.ServerUsPerMsg)
	}
}

// checkPersistDrain checks the relay's accounting of the PERSIST backlog
// after the window: waited for until it was 0, and its server CPU added to
// the window's in the figure per message with the drain.
func checkPersistDrain(t *testing.T, r *bench.Result) {
	t.Helper()
	pd := r.CPU.PersistDrain
	switch {
	case pd == nil:
		t.Fatalf("%s: no persist drain figures", r.Name)
	case pd.Skipped != "" || pd.Seconds < 0 || int64(pd.Backlog) != r.PersistPending:
		t.Errorf("%s: persist drain %+v, want the backlog of %d drained", r.Name, pd, r.PersistPending)
	case pd.ServerUs <= 0 || pd.ServerUsPerMsg < r.CPU.ServerUsPerMsg:
		t.Errorf("%s: persist drain %+v: want its CPU measured and added to the window's %v us/msg", r.Name, pd, r.CPU.ServerUsPerMsg)
	}
}

// TestRelayChildProcess runs the generator in a child process at a fixed
// rate, through Main with its flags and --json.
func TestRelayChildProcess(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.json")
	args := []string{"relay", "--conns", "4", "--rate", "100", "--duration", "1s", "--procs", "1", "--no-baseline",
		"--quiet", "--data", t.TempDir(), "--json", out}
	var stderr strings.Builder
	var stdout strings.Builder
	if code := bench.Main(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "relay at 100 msg/s") {
		t.Errorf("no table: %s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	checkDelivered(t, r)
	if r.Sent < 90 || r.Sent > 110 {
		t.Errorf("sent %d at 100 msg/s for 1s", r.Sent)
	}
	checkSplitCPU(t, r)
}

// checkSplitCPU checks that r reports server and generator CPU apart.
func checkSplitCPU(t *testing.T, r *bench.Result) {
	t.Helper()
	c := r.CPU
	if c == nil || !c.Split || c.Server == "" || c.Generator == "" || c.Count <= 0 || c.ServerUs <= 0 || c.GeneratorUs <= 0 ||
		c.ServerUsPerMsg <= 0 || c.GeneratorUsPerMsg <= 0 {
		t.Errorf("%s: cpu %+v, want server and generator measured apart", r.Name, c)
	}
}

func TestFanout(t *testing.T) {
	r := run(t, bench.Config{Scenario: "fanout", Members: 5, Duration: time.Second})
	if r.Errors != 0 || r.Sent == 0 || r.Delivered != 5*r.Sent || r.Connected != 5 || r.Latency == nil {
		t.Errorf("sent %d delivered %d connected %d errors %d latency %+v notes %v", r.Sent, r.Delivered, r.Connected, r.Errors, r.Latency, r.Notes)
	}
	raw := baseline(t, r, "fan-out")
	if raw.Delivered != 5*raw.Sent {
		t.Errorf("raw fan-out: sent %d delivered %d", raw.Sent, raw.Delivered)
	}
}

// TestPersist runs what bench:soak runs, small: a flat-out calibration,
// then a window at 80% of its end-to-end rate.
func TestPersist(t *testing.T) {
	rs := runAll(t, bench.Config{Scenario: "persist", Conns: 4, Duration: 3 * time.Second, RateFrac: 0.8, Calibrate: 2 * time.Second, Procs: 1})
	if len(rs) != 2 {
		t.Fatalf("%d results, want the calibration and the run", len(rs))
	}
	cal, r := rs[0], rs[1]
	for _, x := range rs {
		checkDelivered(t, x)
		checkSplitCPU(t, x)
		p := x.Persist
		if p == nil || p.Persisted == 0 || p.Rate <= 0 || len(p.Backlog) < 2 || p.DrainSeconds < 0 || p.EndToEndRate <= 0 {
			t.Fatalf("%s: persist figures %+v", x.Name, p)
		}
	}
	if want := float64(int(cal.Persist.EndToEndRate * 0.8)); r.Rate != want {
		t.Errorf("rate %v, want 80%% of the calibration's end-to-end %v", r.Rate, cal.Persist.EndToEndRate)
	}
	if len(r.Checks) == 0 || !strings.Contains(r.Checks[0].Target, "backlog flat") {
		t.Errorf("checks %+v", r.Checks)
	}
	baseline(t, r, "InsertMany")
}

// TestPersistAlone: flat out, the persist scenario also measures the role
// alone: PERSIST paused while the sends build a backlog (every accepted
// message is held in it), then resumed and drained, against the raw
// InsertMany baseline.
func TestPersistAlone(t *testing.T) {
	rs := runAll(t, bench.Config{Scenario: "persist", Conns: 4, Duration: 2 * time.Second, Procs: 1})
	if len(rs) != 2 {
		t.Fatalf("%d results, want the flat-out run and the role alone", len(rs))
	}
	r, a := rs[0], rs[1]
	checkDelivered(t, r)
	if r.Persist == nil || r.Persist.Alone || r.Persist.Persisted == 0 {
		t.Fatalf("flat out: persist figures %+v", r.Persist)
	}
	p := a.Persist
	if p == nil || !p.Alone || a.Acked == 0 || p.BacklogStart < a.Acked || p.Persisted != p.BacklogStart || p.DrainSeconds <= 0 ||
		p.Rate <= 0 || a.Throughput != p.Rate || a.PersistPending != 0 {
		t.Fatalf("alone: acked %d, pending %d, persist figures %+v", a.Acked, a.PersistPending, p)
	}
	if a.CPU == nil || a.CPU.Count != float64(p.Persisted) || a.CPU.ServerUs <= 0 {
		t.Errorf("alone: cpu %+v", a.CPU)
	}
	if len(a.Checks) != 1 || !strings.Contains(a.Checks[0].Target, "60% of raw InsertMany") {
		t.Errorf("alone: checks %+v", a.Checks)
	}
	baseline(t, a, "InsertMany")
}

func TestHistory(t *testing.T) {
	r := run(t, bench.Config{Scenario: "history", HistorySizes: []uint64{200, 1000}, HistoryConvs: 10, HistoryReads: 50, Procs: 1})
	if len(r.History) != 2 || r.Errors != 0 {
		t.Fatalf("history %+v errors %d notes %v", r.History, r.Errors, r.Notes)
	}
	checkSplitCPU(t, r)
	if r.CPU.Per != "page" || r.CPU.Count != 100 {
		t.Errorf("cpu per %q over %v, want per page over 100 reads", r.CPU.Per, r.CPU.Count)
	}
	for i, h := range r.History {
		want := []uint64{200, 1000}[i]
		if h.Stored != want || h.PerConv != want/10 || h.Reads != 50 || h.Latency == nil || h.Latency.P99 <= 0 {
			t.Errorf("point %d: %+v", i, h)
		}
	}
}

// TestHistoryArchive: the archive mode reads full 200-message pages older
// than the hot tier at each size (the read conversations alone are 8,400
// stored messages, so the first point is that many).
func TestHistoryArchive(t *testing.T) {
	r := run(t, bench.Config{Scenario: "history", HistoryMode: bench.HistoryArchive, HistorySizes: []uint64{100, 9000}, HistoryReads: 40, Procs: 1})
	if len(r.History) != 2 || r.Errors != 0 {
		t.Fatalf("history %+v errors %d notes %v", r.History, r.Errors, r.Notes)
	}
	checkSplitCPU(t, r)
	if r.CPU.Per != "page" || r.CPU.Count != 80 {
		t.Errorf("cpu per %q over %v, want per page over 80 reads", r.CPU.Per, r.CPU.Count)
	}
	for i, h := range r.History {
		want := []uint64{8400, 9000}[i]
		if h.Stored != want || h.Convs != 4 || h.PerConv != 2100 || h.Reads != 40 || h.Latency == nil || h.Latency.P99 <= 0 || h.ServerUsPerPage <= 0 {
			t.Errorf("point %d: %+v", i, h)
		}
	}
	if !strings.Contains(r.Name, "archive") || len(r.Checks) != 2 {
		t.Errorf("%q checks %+v", r.Name, r.Checks)
	}
}

func TestIdle(t *testing.T) {
	r := run(t, bench.Config{Scenario: "idle", Conns: 20, Hold: time.Second, Procs: 1})
	i := r.Idle
	if r.Connected != 20 || r.Errors != 0 || i == nil || i.RSSAfterMiB <= 0 || i.HoldSeconds < 1 || i.CPUCorePercent < 0 {
		t.Fatalf("connected %d errors %d idle %+v", r.Connected, r.Errors, i)
	}
	checkSplitCPU(t, r)
	if r.CPU.Per != "conn-s" {
		t.Errorf("idle cpu per %q, want conn-s", r.CPU.Per)
	}
	raw := r.Baselines[0]
	if raw.Connected != 20 || raw.Idle == nil {
		t.Errorf("raw idle: %+v", raw)
	}
}

// TestStorm kills (SIGKILL) the edge process under a few hundred clients
// in a generator child and starts a new one on the same address: every
// client reconnects and syncs again, and no acked message of the traffic
// that ran through it is lost.
func TestStorm(t *testing.T) {
	r := run(t, bench.Config{Scenario: "storm", Conns: 300, Rate: 100, Procs: 1, NatterBin: natterBin})
	s := r.Storm
	if s == nil {
		t.Fatalf("no storm figures; notes %v", r.Notes)
	}
	t.Logf("storm: %+v; cpu %+v; notes %v", *s, *r.CPU, r.Notes)
	if s.Mode != bench.StormKill || s.OldEdgeExit != "signal: killed" {
		t.Errorf("mode %q, old edge %q: want the edge process killed", s.Mode, s.OldEdgeExit)
	}
	if s.Resumed != 300 || r.Connected != 300 || s.Acked == 0 || s.Lost != 0 || s.Received < s.Acked || r.Errors != 0 {
		t.Errorf("resumed %d/%d, acked %d received %d lost %d, errors %d (%v)", s.Resumed, r.Connected, s.Acked, s.Received, s.Lost, r.Errors, r.Notes)
	}
	// The order of events: the old process gone, then the new one ready,
	// then the clients resumed (the last one after the new edge was ready).
	if s.StopSeconds < 0 || s.StartSeconds <= 0 || s.DownSeconds < s.StopSeconds+s.StartSeconds-0.01 || s.BindTries < 1 {
		t.Errorf("stop %v s, start %v s, down %v s, bind tries %d", s.StopSeconds, s.StartSeconds, s.DownSeconds, s.BindTries)
	}
	if s.AfterRestartSeconds < 0 || s.ResumeSeconds < s.DownSeconds || s.ResumeP50 <= 0 || s.ResumeP50 > s.ResumeP90 || s.ResumeP90 > s.ResumeP99 || s.ResumeP99 > s.ResumeSeconds {
		t.Errorf("resume: last %v s after the kill, %v s after the new edge; p50 %v p90 %v p99 %v; edge down %v s",
			s.ResumeSeconds, s.AfterRestartSeconds, s.ResumeP50, s.ResumeP90, s.ResumeP99, s.DownSeconds)
	}
	// Every resumed client dialled again after the kill (the SDK's own
	// reconnect), and the per-second counts end at the total.
	if s.Dials < uint64(s.Resumed) || s.FirstDialP50 <= 0 || s.FirstDialP99 < s.FirstDialP50 || s.FirstDialMax < s.FirstDialP99 || s.FirstDialMax > s.ResumeSeconds ||
		len(s.ResumedBySecond) == 0 || s.ResumedBySecond[len(s.ResumedBySecond)-1] != s.Resumed {
		t.Errorf("dials %d (%d failed), first dial p50 %v p99 %v max %v s, resumed by second %v", s.Dials, s.FailedDials, s.FirstDialP50, s.FirstDialP99, s.FirstDialMax, s.ResumedBySecond)
	}
	if r.CPU == nil || !strings.Contains(r.CPU.Server, "edge processes") || r.CPU.ServerUs <= 0 {
		t.Errorf("cpu %+v, want the edge processes counted", r.CPU)
	}
	// At least every user's delivery subscription went with the old edge
	// and came back with the new one.
	if s.SubChanges < 2*300 {
		t.Errorf("%d subscription changes at the NATS server, want at least %d", s.SubChanges, 2*300)
	}
}

// TestStormGraceful runs the graceful mode: SIGTERM, the edge closes its
// sockets over its lame-duck interval and exits 0 before the new one
// starts.
func TestStormGraceful(t *testing.T) {
	r := run(t, bench.Config{Scenario: "storm", Conns: 20, Rate: 50, LameDuck: 200 * time.Millisecond, StormMode: bench.StormGraceful, NatterBin: natterBin})
	s := r.Storm
	if s == nil || s.Mode != bench.StormGraceful || s.OldEdgeExit != "exit status 0" || s.Resumed != 20 || s.Lost != 0 || s.Acked == 0 || r.Errors != 0 {
		t.Fatalf("storm %+v errors %d notes %v", s, r.Errors, r.Notes)
	}
}

// TestStormPresence runs storm with presence on at a tiny size: clients in
// groups of 4 watch each other; after the kill every client subscribes its
// 3 contacts again on the new edge (3 states each at least), and the run
// still resumes everyone without losing a message.
func TestStormPresence(t *testing.T) {
	r := run(t, bench.Config{Scenario: "storm", Conns: 12, Rate: 20, StormPresence: 3, NatterBin: natterBin})
	s := r.Storm
	if s == nil || s.Presence != 3 || s.Resumed != 12 || s.Lost != 0 || r.Errors != 0 {
		t.Fatalf("storm %+v errors %d notes %v", s, r.Errors, r.Notes)
	}
	if s.PresenceEvents < 12*3 || s.PresencePerSecond <= 0 {
		t.Errorf("presence events %d (%v/s), want at least %d", s.PresenceEvents, s.PresencePerSecond, 12*3)
	}
}

// TestEdgeRebind: storm's restart of a killed edge process polls while its
// address is still taken.
func TestEdgeRebind(t *testing.T) {
	bench.CheckEdgeRebind(t, natterBin)
}
