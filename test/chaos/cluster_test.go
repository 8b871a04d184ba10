//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// Settings of the chaos cluster. Every natter process gets them through its
// environment, "natter streams apply" included, so the consumers are
// defined with them.
const (
	// maxDeliver is the worker consumers' MaxDeliver: the poison message is
	// dead-lettered on its 5th delivery.
	maxDeliver = 5
	// ackWait is the worker consumers' AckWait: how long the batch of a
	// killed persist worker waits before it is redelivered.
	ackWait = 10 * time.Second
	// poisonMarker in a body makes the persist role fail the message
	// (NATTER_FAULT=persist-fail-body, a testing hook).
	poisonMarker = "CHAOS-POISON"
	// edgeRate is the edges' per-connection request rate and burst: the
	// slow-reader scenario sends 1,000 msg/s from four connections.
	edgeRate = "500"
)

// env is the cluster every scenario of one run shares, and the test's own
// connections to it.
type env struct {
	c    *cluster.Cluster
	nc   *nats.Conn
	js   jetstream.JetStream
	mc   *mongo.Client
	msgs *mongo.Collection
	// base are the processes every scenario starts with; a scenario that
	// kills one brings it back, and [env.ready] restarts what is left down.
	base []*cluster.Proc
}

func startCluster(t *testing.T) *env {
	t.Helper()
	start := time.Now()
	var c *cluster.Cluster
	var dir string
	// The harness picks free ports and lets them go before the processes
	// bind them; on a machine where other tests run, one may be taken in
	// between. Such a start is tried again, on new ports.
	for attempt := 1; ; attempt++ {
		var err error
		if dir, err = os.MkdirTemp("", "natter-chaos-"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c, err = cluster.Start(ctx, cluster.Options{
			Binary: binary, Dir: dir, NATSNodes: 3, Edges: 2, WorkerReplicas: 2, Combined: true,
			EdgeArgs: []string{"--rate", edgeRate, "--burst", edgeRate, "--user-rate", "0", "--ip-conn-rate", "0", "--lame-duck", "1s"},
			Env: []string{
				"NATTER_MAX_DELIVER=" + strconv.Itoa(maxDeliver),
				"NATTER_ACK_WAIT=" + ackWait.String(),
				"NATTER_FAULT=persist-fail-body:" + poisonMarker,
			},
			Log: prefixWriter("cluster "),
		})
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start cluster (logs in %s/logs): %v", dir, err)
		}
		t.Logf("start cluster, attempt %d: a port was taken meanwhile; trying again: %v", attempt, err)
		_ = os.RemoveAll(dir)
	}
	e := &env{c: c, base: c.Procs()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if e.nc != nil {
			e.nc.Close()
		}
		if e.mc != nil {
			_ = e.mc.Disconnect(ctx)
		}
		_ = c.Stop(ctx)
		if t.Failed() {
			t.Logf("cluster logs kept in %s/logs", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	t.Logf("cluster of %d processes ready in %v (dir %s)", len(e.base), time.Since(start).Round(time.Millisecond), dir)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	e.nc, err = nats.Connect(c.NATSURL(), nats.Name("natter-chaos"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.PingInterval(2*time.Second), nats.MaxPingsOutstanding(2))
	if err != nil {
		t.Fatal(err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	if e.mc, err = mongo.Connect(ctx, options.Client().ApplyURI(c.MongoURI())); err != nil {
		t.Fatal(err)
	}
	e.msgs = e.mc.Database("natter").Collection(store.CollMessages)
	return e
}

// prefixWriter writes to stdout, each write prefixed: the cluster's
// progress lines.
type prefixWriter string

func (p prefixWriter) Write(b []byte) (int, error) {
	fmt.Print(string(p) + string(b))
	return len(b), nil
}

// ready brings back any base process that is down and waits until the
// cluster is healthy; it returns how long that took.
func (e *env) ready(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range e.base {
		if !p.Running() {
			t.Logf("restarting %s, left down", p.Name)
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.waitHealthy(t, e.js, 2*time.Minute)
	return time.Since(start)
}

// waitHealthy polls until [env.healthy] holds (through js, a connection to
// nodes that answer).
func (e *env) waitHealthy(t *testing.T, js jetstream.JetStream, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.CheckFor(t, timeout, 250*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return e.healthy(ctx, js)
	})
	return time.Since(start)
}

// healthy is nil when every base process runs, the JetStream meta group
// has every node as a current peer, and every stream and consumer has a
// leader and all its replicas current (every stream and durable consumer
// StreamReplicas of them; ephemeral consumers as many as nats-server
// gives them, see [consumerReplicas]).
func (e *env) healthy(ctx context.Context, js jetstream.JetStream) error {
	for _, p := range e.base {
		if !p.Running() {
			return fmt.Errorf("%s is not running", p.Name)
		}
	}
	n := len(e.c.NATS)
	mi, err := e.c.MetaCluster(ctx)
	if err != nil {
		return err
	}
	if mi.Peers != n || mi.Current != n {
		return fmt.Errorf("meta group: %d of %d peers current", mi.Current, n)
	}
	sl := js.ListStreams(ctx)
	var streams []jetstream.StreamConfig
	for si := range sl.Info() {
		if err := replicasCurrent("stream "+si.Config.Name, si.Cluster, e.c.Opts.StreamReplicas); err != nil {
			return err
		}
		streams = append(streams, si.Config)
	}
	if err := sl.Err(); err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	for _, sc := range streams {
		name := sc.Name
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		cl := s.ListConsumers(ctx)
		for ci := range cl.Info() {
			want := consumerReplicas(ci.Config, sc, e.c.Opts.StreamReplicas)
			if err := replicasCurrent("consumer "+name+"/"+ci.Name, ci.Cluster, want); err != nil {
				return err
			}
		}
		if err := cl.Err(); err != nil {
			return fmt.Errorf("list consumers of %s: %w", name, err)
		}
	}
	return nil
}

// consumerReplicas is how many replicas a consumer must have: natter's
// durable consumers inherit the stream's (the cluster's StreamReplicas,
// checked strictly so a durable created R1 by mistake fails the check);
// ephemeral consumers (KV watchers such as the edge's revocation watch,
// ordered consumers) get what nats-server gives them: their configured
// replicas, or 1 on a limits stream when unset (ConsumerConfig.replicas
// in nats-server's consumer.go).
func consumerReplicas(cc jetstream.ConsumerConfig, sc jetstream.StreamConfig, streamReplicas int) int {
	if cc.Durable != "" {
		return streamReplicas
	}
	switch {
	case cc.Replicas > 0 && cc.Replicas <= sc.Replicas:
		return cc.Replicas
	case cc.Replicas == 0 && sc.Retention == jetstream.LimitsPolicy:
		return 1
	default:
		return sc.Replicas
	}
}

func replicasCurrent(what string, ci *jetstream.ClusterInfo, want int) error {
	if ci == nil || ci.Leader == "" {
		return fmt.Errorf("%s: no leader", what)
	}
	if len(ci.Replicas) != want-1 {
		return fmt.Errorf("%s: %d followers, want %d", what, len(ci.Replicas), want-1)
	}
	for _, r := range ci.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("%s: replica %s not current (offline %v, lag %d)", what, r.Name, r.Offline, r.Lag)
		}
	}
	return nil
}

// node returns the NATS node whose server name is name.
func (e *env) node(name string) (*cluster.Proc, error) {
	for _, p := range e.c.NATS {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no NATS node named %q", name)
}

// msgsLeader is the NATS node that leads the MSGS stream, as js sees it.
func (e *env) msgsLeader(ctx context.Context, js jetstream.JetStream) (*cluster.Proc, error) {
	s, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, err
	}
	ci := s.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" {
		return nil, errors.New("MSGS has no leader")
	}
	return e.node(ci.Leader)
}

// jsVia connects to the NATS nodes other than skip (a frozen node would
// hold a connection's requests) and returns JetStream on that connection;
// it is closed at the end of the test.
func (e *env) jsVia(t *testing.T, skip *cluster.Proc) jetstream.JetStream {
	t.Helper()
	var urls []string
	for _, p := range e.c.NATS {
		if p != skip {
			urls = append(urls, "nats://"+p.Addr)
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("natter-chaos-via"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.PingInterval(2*time.Second), nats.MaxPingsOutstanding(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// rssKiB is the resident set size of process pid (VmRSS).
func rssKiB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// metric reads one unlabelled sample (or the sum of a labelled family's
// samples) from the Prometheus endpoint of addr. A name with its labels,
// `natter_worker_consuming{role="persist"}`, reads that sample.
func metric(addr, name string) (float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") &&
			!(strings.HasSuffix(name, "}") && strings.HasPrefix(line, name)) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", name, line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%s: not in the metrics of %s", name, addr)
	}
	return sum, nil
}

// attachedTo names the base processes (edges and workers) that hold a
// client connection to node's client port: read from /proc (each process's
// socket inodes, matched against the connections in /proc/net/tcp).
func (e *env) attachedTo(node *cluster.Proc) []string {
	port := node.Ports["client"]
	remote := map[string]int{} // socket inode -> remote port
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fs[2], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				remote[fs[9]] = int(p)
			}
		}
	}
	var names []string
	for _, p := range e.base {
		if p.Kind != cluster.KindEdge && p.Kind != cluster.KindWorker || !p.Running() {
			continue
		}
		dir := "/proc/" + strconv.Itoa(p.PID()) + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if remote[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] == port {
				names = append(names, p.Name)
				break
			}
		}
	}
	return names
}

// leads lists the streams and consumers whose leader is node, as js sees
// them.
func (e *env) leads(ctx context.Context, js jetstream.JetStream, node *cluster.Proc) []string {
	var out []string
	sl := js.ListStreams(ctx)
	var names []string
	for si := range sl.Info() {
		names = append(names, si.Config.Name)
		if si.Cluster != nil && si.Cluster.Leader == node.Name {
			out = append(out, si.Config.Name)
		}
	}
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		cl := s.ListConsumers(ctx)
		for ci := range cl.Info() {
			if ci.Cluster != nil && ci.Cluster.Leader == node.Name {
				out = append(out, name+"/"+ci.Name)
			}
		}
	}
	return out
}
