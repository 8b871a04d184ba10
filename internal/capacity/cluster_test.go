//go:build plancheck

// The measurements behind docs/capacity.md and the plan's check, on a local
// cluster of the shape "natter cluster up" starts (3 NATS nodes at R3, a
// store, 2 edges, 2 processes per worker role), driven by "natter bench" as
// a process of its own. Long runs: go tool task plan:measure, go tool task
// plan:check (build tag plancheck).
package capacity_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natter-im/natter/bench"
	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/capacity"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testbin"
	"github.com/natter-im/natter/jetstream/subjects"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, "../../cmd/natter", &binary) }

// checkTopology is what the check starts: natter cluster up's defaults.
var checkTopology = capacity.Topology{NATSNodes: 3, Edges: 2, WorkerReplicas: 2}

// clk is the kernel's clock ticks per second of /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clk = 100

type env struct {
	c      *cluster.Cluster
	secret string
	dir    string
}

// startCluster starts the topology of natter cluster up (plain NATS, so
// that the bench can read the PERSIST consumer), with the edges' per
// connection and per user limits out of the bench's way. With
// top.EventsRole the workers run the events role too; with
// top.PushProviders the push role has a Web Push provider (a VAPID key
// made here; the bench's clients register no device, so it reads every
// message and sends nothing, as for a receiver online).
func startCluster(t *testing.T, top capacity.Topology) *env {
	t.Helper()
	secret := strings.Repeat("c0ffee", 8)
	var roles, workerArgs []string
	if top.EventsRole {
		roles = append(append(roles, node.AllRoles...), node.RoleEvents)
	}
	if top.PushProviders {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "vapid.pem")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		workerArgs = []string{"--push-webpush-vapid-key-file", file, "--push-webpush-subject", "mailto:plan@example.com"}
	}
	var c *cluster.Cluster
	var dir string
	for attempt := 1; ; attempt++ {
		dir = t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		var err error
		c, err = cluster.Start(ctx, cluster.Options{
			Binary: binary, Dir: dir, NATSNodes: top.NATSNodes, Edges: top.Edges, WorkerReplicas: top.WorkerReplicas,
			JWTSecret: secret, Roles: roles, WorkerArgs: workerArgs,
			EdgeArgs: []string{"--rate", "1000000", "--burst", "1000000", "--user-rate", "0", "--ip-conn-rate", "0"},
		})
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start cluster: %v", err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return &env{c: c, secret: secret, dir: dir}
}

// progress is one progress line of natter bench with the CPU of every
// process when it was read.
type progress struct {
	line            string
	sent, delivered float64
	snap            snapshot
}

var progressRE = regexp.MustCompile(`\bsent ([0-9,]+)\s+delivered ([0-9,]+)`)

// benchRun runs "natter bench <args>" against the cluster and returns its
// report and its progress lines (one a second), each with a snapshot of the
// processes' CPU taken as it was read.
func (e *env) benchRun(t *testing.T, args ...string) (*bench.Report, []progress) {
	rep, ps, _ := e.benchRunDrained(t, args...)
	return rep, ps
}

// benchRunDrained is benchRun that also returns a snapshot of the
// processes' CPU taken when the PERSIST backlog first reached 0 after the
// bench's first drain began (persist: every accepted message in MongoDB);
// its at is zero when that did not happen.
func (e *env) benchRunDrained(t *testing.T, args ...string) (*bench.Report, []progress, snapshot) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bench.json")
	full := append([]string{"bench"}, args...)
	for _, u := range e.c.EdgeURLs() {
		full = append(full, "--url", u)
	}
	var pids []string
	for _, p := range e.c.Procs() {
		pids = append(pids, strconv.Itoa(p.PID()))
	}
	full = append(full, "--nats-url", e.c.NATSURL(), "--edge-pid", strings.Join(pids, ","),
		"--no-baseline", "--procs", "1", "--json", out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Env = append(os.Environ(), "NATTER_BENCH_JWT_SECRET="+e.secret)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []progress
	var last string
	drained := make(chan snapshot, 1)
	draining := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		last = sc.Text()
		if !draining && strings.Contains(last, ": drain") {
			draining = true
			go func() { drained <- e.waitPersisted(t) }()
		}
		m := progressRE.FindStringSubmatch(last)
		if m == nil {
			continue
		}
		num := func(s string) float64 { v, _ := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64); return v }
		lines = append(lines, progress{last, num(m[1]), num(m[2]), e.snap(t)})
	}
	err = cmd.Wait()
	var end snapshot
	if draining {
		end = <-drained
	}
	t.Logf("natter %s\n%s\n%s", strings.Join(full, " "), last, tail(stdout.String(), 30))
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep, lines, end
}

// waitPersisted polls the PERSIST consumer every 100 ms until its backlog
// is 0 (3 minutes at most) and returns a snapshot taken then; a zero
// snapshot if it never was.
func (e *env) waitPersisted(t *testing.T) snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc, err := nats.Connect(e.c.NATSURL())
	if err != nil {
		return snapshot{}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return snapshot{}
	}
	for ctx.Err() == nil {
		if c, err := js.Consumer(ctx, subjects.StreamMsgs, subjects.ConsumerPersist); err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return e.snap(t)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return snapshot{}
}

// window is the part of a run between the first progress line with a sent
// message and the last line whose delivered count grew: the steady sends,
// without the connects and set-up before or the drain after.
func window(t *testing.T, ps []progress) (a, b progress) {
	t.Helper()
	i := 0
	for i < len(ps) && ps[i].sent == 0 {
		i++
	}
	j := len(ps) - 1
	for j > i && ps[j].delivered == ps[j-1].delivered {
		j--
	}
	if i >= j {
		t.Fatalf("no sending window in %d progress lines", len(ps))
	}
	return ps[i], ps[j]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuTicks is a process's user + system CPU in clock ticks.
func cpuTicks(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("cpu of %d: %v", pid, err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return u + st
}

// rssMiB is a process's resident set in MiB.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// group names a process's part in the figures: "nats", "store", "edge",
// or the worker's role.
func group(p *cluster.Proc) string {
	if p.Kind == cluster.KindWorker {
		return strings.Join(p.Roles, "+")
	}
	return p.Kind
}

// snapshot is the CPU (ticks) of every process, by name, at one time.
type snapshot struct {
	at    time.Time
	ticks map[string]float64
	// busy is the whole machine's busy CPU (every process), in ticks.
	busy float64
}

func (e *env) snap(t *testing.T) snapshot {
	s := snapshot{at: time.Now(), ticks: map[string]float64{}, busy: machineBusy(t)}
	for _, p := range e.c.Procs() {
		s.ticks[p.Name] = cpuTicks(t, p.PID())
	}
	return s
}

// machineBusy is the machine's CPU time spent not idle (all cores, every
// process), in ticks: /proc/stat's first line less idle and iowait.
func machineBusy(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:]
	var sum float64
	for i, x := range f {
		v, _ := strconv.ParseFloat(x, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user already
			continue
		}
		sum += v
	}
	return sum
}

// cores is each group's CPU between two snapshots, in cores.
func (e *env) cores(a, b snapshot) map[string]float64 {
	secs := b.at.Sub(a.at).Seconds()
	out := map[string]float64{}
	for _, p := range e.c.Procs() {
		out[group(p)] += (b.ticks[p.Name] - a.ticks[p.Name]) / clk / secs
	}
	return out
}

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func loadavg(t *testing.T) string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func keys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestPlanMeasure measures the per-process figures of docs/capacity.md on a
// running cluster and logs them as rows of its table: CPU at rest per
// process kind, CPU per 1:1 message of each part (flat out, until archived),
// CPU per delivery into a group (flat out), JetStream and store bytes per
// message, memory. With NATTER_PLANCHECK_OPTIN=1 (go tool task
// plan:measure:optin) the cluster runs the events role and push with a
// provider: their roles' figures come from that run, and the NATS nodes'
// share of each from the difference of msg.nats_us between the two runs.
func TestPlanMeasure(t *testing.T) {
	top := checkTopology
	if os.Getenv("NATTER_PLANCHECK_OPTIN") == "1" {
		top.EventsRole, top.PushProviders = true, true
	}
	e := startCluster(t, top)
	t.Logf("cluster of %d processes (events role %v, push providers %v), load %s", len(e.c.Procs()), top.EventsRole, top.PushProviders, loadavg(t))

	// Rest: every process idle for 20 s (consumers' pulls, heartbeats).
	a := e.snap(t)
	time.Sleep(20 * time.Second) // a measurement window, not synchronisation
	rest := e.cores(a, e.snap(t))
	kinds := map[string]int{}
	for _, p := range e.c.Procs() {
		kinds[p.Kind]++
	}
	restKind := map[string]float64{}
	for g, v := range rest {
		k := g
		switch g {
		case cluster.KindNATS, cluster.KindStore, cluster.KindEdge:
		default:
			k = cluster.KindWorker
		}
		restKind[k] += v
	}
	for _, k := range keys(restKind) {
		t.Logf("rest: %-8s %d processes, %.4f cores, %.5f cores each", k, kinds[k], restKind[k], restKind[k]/float64(kinds[k]))
	}

	natsBefore := int64(0)
	for _, p := range e.c.NATS {
		natsBefore += dirBytes(t, p.Dir)
	}
	storeBefore := storeBytes(t, e.c.Store.Dir)
	dbBefore := e.dbStats(t)
	streamsBefore := e.streams(t)
	rssBefore := map[string]float64{}
	for _, p := range e.c.Procs() {
		rssBefore[group(p)] += rssMiB(t, p.PID())
	}

	// 1:1 messages flat out (closed loop: each sender waits for its ack),
	// from the first send until MongoDB holds every accepted message: the
	// cost of a message through every role, where the plan puts a replica,
	// near its cores' limit. (natter bench persist then measures the role
	// alone; that part is not used.)
	rep, ps, drained := e.benchRunDrained(t, "persist", "--conns", "200", "--duration", "20s")
	var r *bench.Result
	for _, x := range rep.Results {
		if x.Persist != nil && !x.Persist.Alone {
			r = x
			break
		}
	}
	if r == nil || drained.at.IsZero() || len(ps) == 0 {
		t.Fatalf("persist run: no flat-out result or no drain (%d progress lines)", len(ps))
	}
	wa := ps[0]
	for _, p := range ps {
		if p.sent > 0 {
			wa = p
			break
		}
	}
	n := float64(r.Acked) - wa.sent
	split := e.cores(wa.snap, drained)
	secs := drained.at.Sub(wa.snap.at).Seconds()
	msgUs := map[string]float64{}
	var total float64
	for _, g := range keys(split) {
		msgUs[g] = (split[g] - rest[g]) * secs * 1e6 / n
		total += msgUs[g]
	}
	t.Logf("persist flat out: %.0f messages accepted and archived over %.1f s (%.0f msg/s end to end; the bench: %.0f), server %.0f us/msg (rest taken off), generator %.0f us/msg (the sends only); load %s",
		n, secs, n/secs, r.Persist.EndToEndRate, total, r.CPU.GeneratorUs/float64(r.Acked), loadavg(t))
	for _, g := range keys(msgUs) {
		t.Logf("| `msg.%s_us` | %.0f |", g, msgUs[g])
	}
	t.Logf("| `msg.generator_us` | %.0f |", r.CPU.GeneratorUs/float64(r.Acked))

	natsAfter := int64(0)
	for _, p := range e.c.NATS {
		natsAfter += dirBytes(t, p.Dir)
	}
	storeAfter := storeBytes(t, e.c.Store.Dir)
	streamsAfter := e.streams(t)
	// Every message of the run (the bench's role-alone part included).
	msgs := float64(streamsAfter["MSGS"][0] - streamsBefore["MSGS"][0])
	t.Logf("storage: JetStream files %.0f bytes/msg per node (3 nodes: %d -> %d bytes), store files %.0f bytes/msg (%d -> %d, without -wal/-shm), %.0f messages",
		float64(natsAfter-natsBefore)/3/msgs, natsBefore, natsAfter, float64(storeAfter-storeBefore)/msgs, storeBefore, storeAfter, msgs)
	dbAfter := e.dbStats(t)
	t.Logf("store dbStats: %d -> %d documents, totalSize %d -> %d bytes (data %d -> %d, indexes %d -> %d): %.0f bytes/msg",
		dbBefore.Objects, dbAfter.Objects, dbBefore.Total, dbAfter.Total, dbBefore.Data, dbAfter.Data, dbBefore.Index, dbAfter.Index,
		float64(dbAfter.Total-dbBefore.Total)/msgs)
	for _, name := range []string{"MSGS", "EVENTS"} {
		x, y := streamsBefore[name], streamsAfter[name]
		t.Logf("stream %s: %d -> %d messages, %d -> %d bytes: %.0f bytes/msg", name, x[0], y[0], x[1], y[1], float64(y[1]-x[1])/float64(max(1, y[0]-x[0])))
	}
	rssAfter := map[string]float64{}
	for _, p := range e.c.Procs() {
		rssAfter[group(p)] += rssMiB(t, p.PID())
	}
	for _, g := range keys(rssAfter) {
		t.Logf("rss %-14s %.0f MiB at rest -> %.0f MiB after %.0f msg/s", g, rssBefore[g], rssAfter[g], n/secs)
	}

	// Group deliveries: one sender into a group, online members on both
	// edges, at a fixed rate; each message's own cost (msgUs) taken off.
	members := envInt("NATTER_PLANCHECK_MEMBERS", 200)
	frate := envInt("NATTER_PLANCHECK_FANOUT_RATE", 0)
	args := []string{"fanout", "--members", strconv.Itoa(members), "--duration", "20s"}
	if frate > 0 {
		args = append(args, "--rate", strconv.Itoa(frate))
	}
	rep, ps = e.benchRun(t, args...)
	r = rep.Results[len(rep.Results)-1]
	wa, wb := window(t, ps)
	dl, sent := wb.delivered-wa.delivered, wb.sent-wa.sent
	split = e.cores(wa.snap, wb.snap)
	secs = wb.snap.at.Sub(wa.snap.at).Seconds()
	total = 0
	dlvUs := map[string]float64{}
	for _, g := range keys(split) {
		dlvUs[g] = ((split[g]-rest[g])*secs*1e6 - sent*msgUs[g]) / dl
		total += dlvUs[g]
	}
	t.Logf("fanout into %d members at %d msg/s (0: flat out): %.0f deliveries of %.0f messages over %.1f s of the window, server %.2f us/delivery (rest and the messages' own cost taken off), generator %.2f us/delivery; load %s",
		members, frate, dl, sent, secs, total, r.CPU.GeneratorUs/float64(r.Delivered), loadavg(t))
	for _, g := range keys(dlvUs) {
		t.Logf("| `dlv.%s_us` | %.2f |", g, dlvUs[g])
	}
	t.Logf("| `dlv.generator_us` | %.2f |", r.CPU.GeneratorUs/float64(r.Delivered))
}

// storeBytes is the size of the store's files but its write-ahead log and
// shared memory (checkpointed into the database sooner or later).
func storeBytes(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, "-wal") && !strings.HasSuffix(path, "-shm") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

type dbStats struct {
	Objects int64 `bson:"objects"`
	Data    int64 `bson:"dataSize"`
	Index   int64 `bson:"indexSize"`
	Total   int64 `bson:"totalSize"`
}

// dbStats is the store's dbStats of natter's database.
func (e *env) dbStats(t *testing.T) dbStats {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(e.c.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	var st dbStats
	if err := mc.Database("natter").RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// streams is each stream's messages and bytes, as the NATS nodes' monitoring
// reports them (the largest of the nodes' answers).
func (e *env) streams(t *testing.T) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, p := range e.c.NATS {
		resp, err := http.Get("http://" + p.HTTP + "/jsz?streams=true")
		if err != nil {
			t.Fatal(err)
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name  string `json:"name"`
					State struct {
						Msgs  int64 `json:"messages"`
						Bytes int64 `json:"bytes"`
					} `json:"state"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				if s.State.Msgs > out[s.Name][0] {
					out[s.Name] = [2]int64{s.State.Msgs, s.State.Bytes}
				}
			}
		}
	}
	return out
}

func sumRest(rest map[string]float64) float64 {
	var s float64
	for _, v := range rest {
		s += v
	}
	return s
}

// TestPlanCheck starts the cluster natter cluster up starts and checks that
// the end-to-end rate natter bench persist sustains on it flat out (every
// accepted message in MongoDB) is within 25% of the plan's prediction for
// that cluster on this machine (natter plan --cluster).
func TestPlanCheck(t *testing.T) {
	e := startCluster(t, checkTopology)
	// A short run first, as plan:measure's idle window and runs do: the
	// streams' and consumers' leaders settle and the processes' caches
	// fill before the measured run.
	e.benchRun(t, "relay", "--conns", "20", "--rate", "200", "--duration", "5s")
	cores := runtime.NumCPU()
	pred := capacity.Default().ClusterRate(checkTopology, float64(cores), true)
	loadBefore := loadavg(t)
	rep, ps, drained := e.benchRunDrained(t, "persist", "--conns", "200", "--duration", "20s")
	var flat *bench.Result
	for _, r := range rep.Results {
		if r.Persist != nil && !r.Persist.Alone {
			flat = r
			break
		}
	}
	if flat == nil || flat.Persist.EndToEndRate <= 0 {
		t.Fatalf("no end-to-end rate in the report: %+v", rep.Results)
	}
	got := flat.Persist.EndToEndRate
	ratio := got / pred.MsgPerSec
	// The cores the cluster could have: the host's less what the rest of
	// the machine used from the first send until MongoDB held every
	// message (on a shared machine the cluster gets what other work
	// leaves). The check holds the sustained rate to the plan's prediction
	// for those cores.
	var first *progress
	for i := range ps {
		if ps[i].sent > 0 {
			first = &ps[i]
			break
		}
	}
	if first == nil || drained.at.IsZero() {
		t.Fatalf("no sending window or no drain in the run")
	}
	secs := drained.at.Sub(first.snap.at).Seconds()
	var cl float64
	for _, v := range e.cores(first.snap, drained) {
		cl += v
	}
	gen := flat.CPU.GeneratorUs / 1e6 / secs
	busy := (drained.busy - first.snap.busy) / clk / secs
	others := max(0, busy-cl-gen)
	avail := float64(cores) - others
	forAvail := capacity.Default().ClusterRate(checkTopology, avail, true)
	availRatio := got / forAvail.MsgPerSec
	t.Logf("plan check on %d cores, cluster %+v, load %s before, %s after: natter bench persist sustained %.0f msg/s end to end (%d accepted, all in MongoDB); the plan predicts %.0f msg/s for the %d cores (%s): measured/predicted %.2f; other work used %.2f cores meanwhile (machine %.2f, cluster %.2f at %.0f us/msg, bench %.2f), so the cluster could have %.2f: the plan predicts %.0f msg/s for those: measured/predicted %.2f",
		cores, checkTopology, loadBefore, loadavg(t), got, flat.Acked, pred.MsgPerSec, cores, pred.Why, ratio,
		others, busy, cl, cl*secs*1e6/(float64(flat.Acked)-first.sent), gen, avail, forAvail.MsgPerSec, availRatio)
	if availRatio < 0.75 || availRatio > 1.25 {
		t.Errorf("measured %.0f msg/s is %.0f%% of the %.0f msg/s the plan predicts for the %.2f cores the cluster could have: outside 75-125%%", got, availRatio*100, forAvail.MsgPerSec, avail)
	}
}
