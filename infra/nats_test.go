package infra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// parseConf parses a nats-server config file with the server's own parser.
func parseConf(tb testing.TB, path string) *server.Options {
	tb.Helper()
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return o
}

// startServer starts o (ports and store already overridden) and waits until
// it accepts clients. The server stops at the end of the test.
func startServer(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("%s: %v", o.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatalf("%s: not ready", o.ServerName)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// localize points a parsed config at loopback: random client port, no
// monitoring port, the store under a temp dir.
func localize(tb testing.TB, o *server.Options) {
	o.Host, o.Port = "127.0.0.1", -1
	o.HTTPHost, o.HTTPPort = "", 0
	o.StoreDir = tb.TempDir()
}

func connect(tb testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc := testenv.Connect(tb, urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	return nc, testenv.JetStream(tb, nc)
}

// routePingInterval and routePingMax are the route ping settings of every
// cluster file and of the Helm values: "natter nats"'s defaults
// (--route-ping-interval, --route-max-pings-out).
const (
	routePingInterval = time.Second
	routePingMax      = 2
)

// TestNATSCluster parses infra/nats/cluster/n{1,2,3}.conf, checks what the
// files promise (names, ports, routes, JetStream, sync_interval), then starts
// the three servers from the parsed options (ports moved to free loopback
// ports, stores in temp dirs), waits for a 3-node JetStream meta group, runs
// what "natter streams apply --replicas 3" runs, and checks MSGS is R3 and
// keeps taking publishes after its leader is shut down.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	names := []string{"n1", "n2", "n3"}
	opts := make([]*server.Options, len(names))
	for i, name := range names {
		o := parseConf(t, filepath.Join("nats", "cluster", name+".conf"))
		opts[i] = o
		if o.ServerName != name {
			t.Errorf("%s.conf: server_name %q", name, o.ServerName)
		}
		if o.Port != 4222 || o.HTTPPort != 8222 || o.Cluster.Port != 6222 {
			t.Errorf("%s.conf: ports client %d, monitor %d, cluster %d; want 4222, 8222, 6222", name, o.Port, o.HTTPPort, o.Cluster.Port)
		}
		if !o.JetStream || o.StoreDir == "" {
			t.Errorf("%s.conf: JetStream %v with store_dir %q", name, o.JetStream, o.StoreDir)
		}
		if o.Cluster.Name != "natter" {
			t.Errorf("%s.conf: cluster name %q, want natter", name, o.Cluster.Name)
		}
		// The durability decision documented in the files and README.
		if o.SyncInterval != 2*time.Minute || o.SyncAlways {
			t.Errorf("%s.conf: sync_interval %v (always %v), want the documented 2m", name, o.SyncInterval, o.SyncAlways)
		}
		// A frozen node is cut off in 2-3 s (natter nats's defaults too).
		if o.Cluster.PingInterval != routePingInterval || o.Cluster.MaxPingsOut != routePingMax {
			t.Errorf("%s.conf: cluster ping_interval %v, ping_max %d; want %v, %d", name, o.Cluster.PingInterval, o.Cluster.MaxPingsOut, routePingInterval, routePingMax)
		}
		if o.LameDuckDuration != 30*time.Second || o.LameDuckGracePeriod != 10*time.Second {
			t.Errorf("%s.conf: lame duck %v, grace %v; want 30s, 10s", name, o.LameDuckDuration, o.LameDuckGracePeriod)
		}
		var hosts []string
		for _, r := range o.Routes {
			if r.Port() != "6222" {
				t.Errorf("%s.conf: route %s not on the cluster port", name, r)
			}
			hosts = append(hosts, r.Hostname())
		}
		if !slices.Equal(hosts, names) {
			t.Errorf("%s.conf: routes to %v, want %v", name, hosts, names)
		}
	}

	// Start the three nodes on loopback, routes rewritten to the free
	// cluster ports.
	ports := make([]int, len(opts))
	routes := make([]*url.URL, len(opts))
	for i := range opts {
		ports[i] = freePort(t)
		routes[i] = &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(ports[i])}
	}
	srvs := make([]*server.Server, len(opts))
	for i, o := range opts {
		localize(t, o)
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", ports[i]
		o.Routes = routes
		srvs[i] = startServer(t, o)
	}
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		for _, s := range srvs {
			jsz, err := s.Jsz(nil)
			if err != nil {
				return err
			}
			if jsz.Meta == nil || jsz.Meta.Size != 3 || jsz.Meta.Leader == "" {
				return fmt.Errorf("%s: JetStream meta group not formed: %+v", s.Name(), jsz.Meta)
			}
		}
		return nil
	})

	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.ClientURL())
	}
	_, js := connect(t, joinComma(urls))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	// Right after the election the meta leader may not answer yet: retry
	// with a short deadline per attempt.
	testenv.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := streams.Apply(actx, js, streams.Config{Replicas: 3})
		return err
	})
	s, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("MSGS is not R3 over the three nodes: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	if _, err := js.Publish(ctx, subjects.Msg("c1"), []byte("before")); err != nil {
		t.Fatal(err)
	}

	// Lose the stream leader: the two others keep a quorum and the stream
	// keeps acking (what sync_interval's comment relies on).
	for _, srv := range srvs {
		if srv.Name() == info.Cluster.Leader {
			srv.Shutdown()
		}
	}
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.Publish(pctx, subjects.Msg("c1"), []byte("after"), jetstream.WithMsgID("after-1"))
		return err
	})
	testenv.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 2 || info.Cluster.Leader == "" {
			return fmt.Errorf("after losing the leader: %d messages, leader %q", info.State.Msgs, info.Cluster.Leader)
		}
		return nil
	})
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, v := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v)
	}
	return b.String()
}

// decodeStrict decodes path into v, refusing unknown fields (a typo in a
// field name would otherwise be silently ignored by the nats CLI).
func decodeStrict(tb testing.TB, path string, v any) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(readFile(tb, path))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// TestNATSDisasterRecovery checks infra/nats/dr: both region configs parse
// with distinct JetStream domains and a leaf connection from west to east;
// msgs-mirror.json is a jetstream.StreamConfig mirroring east's MSGS with
// natter's own limits; fanout-failover.json is the FANOUT consumer natter
// defines, starting at new messages. Then it runs the runbook on one server
// per region: MSGS in east, the mirror in west over the leaf connection (same
// sequence numbers), east lost, FANOUT created, "natter streams apply" in
// west promotes the mirror, and the log continues at the next sequence
// without re-fanning-out the mirrored messages.
func TestNATSDisasterRecovery(t *testing.T) {
	t.Parallel()
	east := parseConf(t, filepath.Join("nats", "dr", "east.conf"))
	west := parseConf(t, filepath.Join("nats", "dr", "west.conf"))
	for _, c := range []struct {
		o      *server.Options
		region string
	}{{east, "east"}, {west, "west"}} {
		if !c.o.JetStream || c.o.JetStreamDomain != c.region {
			t.Errorf("%s.conf: JetStream %v, domain %q; want domain %q", c.region, c.o.JetStream, c.o.JetStreamDomain, c.region)
		}
		if c.o.Cluster.Name != c.region || len(c.o.Routes) != 3 {
			t.Errorf("%s.conf: cluster %q with %d routes; want cluster %q of 3", c.region, c.o.Cluster.Name, len(c.o.Routes), c.region)
		}
		if c.o.Cluster.PingInterval != routePingInterval || c.o.Cluster.MaxPingsOut != routePingMax {
			t.Errorf("%s.conf: cluster ping_interval %v, ping_max %d; want %v, %d", c.region, c.o.Cluster.PingInterval, c.o.Cluster.MaxPingsOut, routePingInterval, routePingMax)
		}
		if c.o.SyncInterval != 2*time.Minute || c.o.SyncAlways {
			t.Errorf("%s.conf: sync_interval %v, want 2m", c.region, c.o.SyncInterval)
		}
		if c.o.LeafNode.Port != 7422 {
			t.Errorf("%s.conf: leafnodes port %d, want 7422", c.region, c.o.LeafNode.Port)
		}
	}
	if len(east.LeafNode.Remotes) != 0 {
		t.Errorf("east.conf dials leaf remotes; only west dials (one direction, no loop)")
	}
	if len(west.LeafNode.Remotes) != 1 || len(west.LeafNode.Remotes[0].URLs) != 3 {
		t.Fatalf("west.conf: want one leaf remote with the three east nodes, got %+v", west.LeafNode.Remotes)
	}
	for _, u := range west.LeafNode.Remotes[0].URLs {
		if u.Port() != "7422" || !slices.Contains([]string{"east-1", "east-2", "east-3"}, u.Hostname()) {
			t.Errorf("west.conf: leaf remote %s is not an east node's leafnodes port", u)
		}
	}

	var mirror jetstream.StreamConfig
	decodeStrict(t, filepath.Join("nats", "dr", "msgs-mirror.json"), &mirror)
	defs := streams.Define(streams.Config{Replicas: 3})
	i := slices.IndexFunc(defs.Streams, func(s jetstream.StreamConfig) bool { return s.Name == subjects.StreamMsgs })
	if i < 0 {
		t.Fatalf("streams.Define has no %s", subjects.StreamMsgs)
	}
	msgs := defs.Streams[i]
	switch {
	case mirror.Mirror == nil:
		t.Fatal("msgs-mirror.json: no mirror")
	case mirror.Name != subjects.StreamMsgs || mirror.Mirror.Name != subjects.StreamMsgs:
		t.Errorf("msgs-mirror.json: stream %q mirrors %q; both must be %s (natter finds the log by that name after failover)", mirror.Name, mirror.Mirror.Name, subjects.StreamMsgs)
	case mirror.Mirror.External == nil || mirror.Mirror.External.APIPrefix != "$JS."+east.JetStreamDomain+".API":
		t.Errorf("msgs-mirror.json: mirror external %+v, want api $JS.%s.API", mirror.Mirror.External, east.JetStreamDomain)
	case len(mirror.Subjects) != 0:
		t.Errorf("msgs-mirror.json: a mirror takes no subjects, has %v", mirror.Subjects)
	}
	if mirror.MaxMsgsPerSubject != msgs.MaxMsgsPerSubject || mirror.Storage != msgs.Storage || mirror.Retention != msgs.Retention ||
		mirror.Discard != msgs.Discard || mirror.Replicas != msgs.Replicas || mirror.AllowDirect != msgs.AllowDirect || mirror.DenyDelete != msgs.DenyDelete {
		t.Errorf("msgs-mirror.json limits differ from natter's MSGS at --replicas 3:\n got %+v\nwant %+v", mirror, msgs)
	}

	var fanout jetstream.ConsumerConfig
	decodeStrict(t, filepath.Join("nats", "dr", "fanout-failover.json"), &fanout)
	var want jetstream.ConsumerConfig
	for _, c := range streams.Define(streams.Config{}).Consumers[subjects.StreamMsgs] {
		if c.Durable == subjects.ConsumerFanout {
			want = c
		}
	}
	// streams.Apply leaves a consumer alone when these match, so the
	// operator's deliver policy survives the promotion.
	if fanout.Durable != want.Durable || fanout.Description != want.Description || fanout.AckPolicy != want.AckPolicy ||
		fanout.AckWait != want.AckWait || fanout.MaxDeliver != want.MaxDeliver || fanout.MaxAckPending != want.MaxAckPending ||
		fanout.FilterSubject != want.FilterSubject {
		t.Errorf("fanout-failover.json differs from natter's FANOUT:\n got %+v\nwant %+v", fanout, want)
	}
	if fanout.DeliverPolicy != jetstream.DeliverNewPolicy {
		t.Errorf("fanout-failover.json: deliver policy %v, want new", fanout.DeliverPolicy)
	}

	// The runbook, one server per region.
	leafPort := freePort(t)
	localize(t, east)
	east.Cluster, east.Routes = server.ClusterOpts{}, nil
	east.LeafNode.Host, east.LeafNode.Port = "127.0.0.1", leafPort
	localize(t, west)
	west.Cluster, west.Routes = server.ClusterOpts{}, nil
	west.LeafNode.Host, west.LeafNode.Port = "", 0
	west.LeafNode.Remotes[0].URLs = []*url.URL{{Scheme: "nats-leaf", Host: "127.0.0.1:" + strconv.Itoa(leafPort)}}
	es := startServer(t, east)
	ws := startServer(t, west)
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if es.NumLeafNodes() != 1 || ws.NumLeafNodes() != 1 {
			return fmt.Errorf("leaf connection: east %d, west %d", es.NumLeafNodes(), ws.NumLeafNodes())
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	_, ejs := connect(t, es.ClientURL())
	if _, err := streams.Apply(ctx, ejs, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if _, err := ejs.Publish(ctx, subjects.Msg(fmt.Sprintf("c%d", i%2)), []byte(fmt.Sprintf("m%d", i)), jetstream.WithMsgID(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}

	_, wjs := connect(t, ws.ClientURL())
	mirror.Replicas = 1 // one server per region here
	ms, err := wjs.CreateStream(ctx, mirror)
	if err != nil {
		t.Fatalf("create the mirror in west: %v", err)
	}
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		info, err := ms.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != n {
			return fmt.Errorf("mirror has %d of %d messages", info.State.Msgs, n)
		}
		return nil
	})
	es0, err := ejs.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		a, err := es0.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ms.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		// Same sequence numbers: natter's block anchors (stream seqs in
		// headers) stay valid in the promoted mirror.
		if a.Subject != b.Subject || !bytes.Equal(a.Data, b.Data) || a.Header.Get(jetstream.MsgIDHeader) != b.Header.Get(jetstream.MsgIDHeader) {
			t.Fatalf("seq %d: east %s %q, west %s %q", seq, a.Subject, a.Data, b.Subject, b.Data)
		}
	}

	// Region east is lost. Failover in west: FANOUT from new messages, then
	// natter's own apply promotes the mirror.
	es.Shutdown()
	if _, err := wjs.CreateOrUpdateConsumer(ctx, subjects.StreamMsgs, fanout); err != nil {
		t.Fatalf("create FANOUT on the mirror: %v", err)
	}
	changes, err := streams.Apply(ctx, wjs, streams.Config{})
	if err != nil {
		t.Fatalf("streams apply in west: %v", err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	if !slices.Contains(got, "updated stream "+subjects.StreamMsgs) || slices.Contains(got, "created consumer MSGS/FANOUT") || slices.Contains(got, "updated consumer MSGS/FANOUT") {
		t.Errorf("streams apply in west: %v; want MSGS promoted and FANOUT left as created", got)
	}
	info, err := ms.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Mirror != nil || !slices.Equal(info.Config.Subjects, []string{subjects.MsgsAll}) || info.State.Msgs != n {
		t.Fatalf("after promotion: mirror %+v, subjects %v, %d messages", info.Config.Mirror, info.Config.Subjects, info.State.Msgs)
	}
	ack, err := wjs.Publish(ctx, subjects.Msg("c0"), []byte("after failover"))
	if err != nil {
		t.Fatalf("publish in the promoted region: %v", err)
	}
	if ack.Sequence != n+1 {
		t.Errorf("first message after failover has seq %d, want %d", ack.Sequence, n+1)
	}
	// A consumer's pending count follows the stream asynchronously just
	// after a promotion and a publish: poll.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for name, pending := range map[string]uint64{subjects.ConsumerFanout: 1, subjects.ConsumerPersist: n + 1} {
			c, err := wjs.Consumer(ctx, subjects.StreamMsgs, name)
			if err != nil {
				return err
			}
			ci, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if ci.NumPending != pending {
				return fmt.Errorf("%s pending %d, want %d (FANOUT: new messages only; PERSIST: the whole log, stored idempotently)", name, ci.NumPending, pending)
			}
		}
		return nil
	})
}

// TestNATSClusterWithPermissions enables the commented include of
// ../permissions.conf in copies of the cluster files and parses them: the
// include must come first, so each node's own settings (listen on all
// interfaces, its store, its cluster) replace the single-server defaults of
// permissions.conf, and the NATTER account with JetStream comes in.
func TestNATSClusterWithPermissions(t *testing.T) {
	t.Parallel()
	const include = "# include ../permissions.conf"
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cluster"), 0o755); err != nil {
		t.Fatal(err)
	}
	perms := readFile(t, filepath.Join("nats", "permissions.conf"))
	if err := os.WriteFile(filepath.Join(dir, "permissions.conf"), []byte(perms), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		src := readFile(t, filepath.Join("nats", "cluster", name+".conf"))
		if strings.Count(src, include) != 1 {
			t.Fatalf("%s.conf: want the line %q once", name, include)
		}
		path := filepath.Join(dir, "cluster", name+".conf")
		if err := os.WriteFile(path, []byte(strings.Replace(src, include, "include ../permissions.conf", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		plain := parseConf(t, filepath.Join("nats", "cluster", name+".conf"))
		o := parseConf(t, path)
		if o.Host != plain.Host || o.Port != plain.Port || o.StoreDir != plain.StoreDir || o.Cluster.Name != plain.Cluster.Name ||
			len(o.Routes) != len(plain.Routes) || o.SyncInterval != plain.SyncInterval || !o.JetStream {
			t.Errorf("%s.conf with permissions: listen %s:%d, store %q, cluster %q; the node's settings must win over permissions.conf (%s:%d, %q, %q)",
				name, o.Host, o.Port, o.StoreDir, o.Cluster.Name, plain.Host, plain.Port, plain.StoreDir, plain.Cluster.Name)
		}
		natter := slices.ContainsFunc(o.Accounts, func(a *server.Account) bool { return a.Name == "NATTER" })
		if !natter || len(o.Users) == 0 {
			t.Errorf("%s.conf with permissions: account NATTER %v, %d users", name, natter, len(o.Users))
		}
	}
}
