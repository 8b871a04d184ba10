package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/internal/testenv"
)

// TestNATSSubcommandCluster runs three "natter nats" processes as a real
// cluster: an R3 stream accepts writes, keeps them while a node is killed
// with SIGKILL, and the node restarted on the same name and store catches up
// and is a current replica again. SIGTERM stops each node with exit 0.
func TestNATSSubcommandCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports := make([]string, 3)
	for i := range ports {
		ports[i] = deadPort(t)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+p)
	}
	args := func(i int) []string {
		return []string{"nats", "--name", fmt.Sprintf("n%d", i+1), "--port", "-1", "--http-port", "0",
			"--cluster-port", ports[i], "--routes", strings.Join(routes, ","), "--store", filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
	}
	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = startProc(t, args(i)...)
		if nodes[i].ready["name"] != fmt.Sprintf("n%d", i+1) || nodes[i].ready["cluster"] != "127.0.0.1:"+ports[i] {
			t.Fatalf("ready line of node %d: %v", i+1, nodes[i].ready)
		}
	}
	urls := func() string {
		var u []string
		for _, n := range nodes {
			u = append(u, n.ready["nats"])
		}
		return strings.Join(u, ",")
	}
	js := testenv.JetStream(t, testenv.Connect(t, urls(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The meta leader is elected once the routes are up: retry until then.
	var st jetstream.Stream
	pollUntil(t, ctx, "R3 stream created", func() error {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		st, err = js.CreateStream(actx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
		return err
	})
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			pollUntil(t, ctx, "publish", func() error {
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(actx, "t.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
				return err
			})
		}
	}
	publish(0, 100)

	// kill -9 the stream leader: a new one is elected and writes go on.
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for i, n := range nodes {
		if n.ready["name"] == info.Cluster.Leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("leader %q is none of the nodes", info.Cluster.Leader)
	}
	if err := nodes[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-nodes[victim].exited
	publish(100, 200)

	// Restarted with the same name and store, it rejoins and catches up.
	nodes[victim] = startProc(t, args(victim)...)
	pollUntil(t, ctx, "three current replicas with 200 messages", func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 200 {
			return fmt.Errorf("%d messages", info.State.Msgs)
		}
		if len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("%d followers", len(info.Cluster.Replicas))
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		return nil
	})
	for i, n := range nodes {
		if code, _ := n.stop(t); code != 0 {
			t.Fatalf("node %d: exit %d\n%s", i+1, code, n.stderr)
		}
	}
}

// TestNATSSubcommandConfigFile starts "natter nats" from a nats-server
// configuration file: the file's server name and JetStream store hold, and a
// flag given on the command line overrides the file's port.
func TestNATSSubcommandConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "n.conf")
	store := filepath.Join(dir, "js")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("server_name: fromfile\nlisten: 127.0.0.1:4222\njetstream {\n  store_dir: %q\n  sync_interval: \"1s\"\n}\n", store)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "nats", "--config", conf, "--port", "-1")
	if p.ready["name"] != "fromfile" || p.ready["store"] != store || strings.HasSuffix(p.ready["nats"], ":4222") {
		t.Fatalf("ready line: %v", p.ready)
	}
	js := testenv.JetStream(t, testenv.Connect(t, p.ready["nats"]))
	ai, err := js.AccountInfo(context.Background())
	if err != nil || ai.Tier.Streams != 0 {
		t.Fatalf("JetStream: %v %+v", err, ai)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
}

// TestStoreSubcommand runs "natter store" and talks to it with the MongoDB
// driver; data written survives a restart on the same directory.
func TestStoreSubcommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range 2 {
		p := startProc(t, "store", "--dir", dir, "--listen", "127.0.0.1:0")
		uri := p.ready["mongo"]
		if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
			t.Fatalf("ready line: %v", p.ready)
		}
		cl, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		coll := cl.Database("natter").Collection("probe")
		if round == 0 {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
			t.Fatalf("round %d: %d documents, %v", round, n, err)
		}
		_ = cl.Disconnect(ctx)
		if code, _ := p.stop(t); code != 0 {
			t.Fatalf("exit %d\n%s", code, p.stderr)
		}
	}
}

// pollUntil retries fn every 100ms until it returns nil, failing the test
// once ctx's deadline has passed: the polls of a test share its budget.
func pollUntil(t *testing.T, ctx context.Context, what string, fn func() error) {
	t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		t.Fatalf("%s: pollUntil needs a context with a deadline", what)
	}
	testenv.CheckFor(t, time.Until(deadline), 100*time.Millisecond, func() error {
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}
