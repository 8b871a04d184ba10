package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testbin"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/store"
)

// binary is the natter binary built once for the tests.
var binary string

func TestMain(m *testing.M) { testbin.Main(m, "..", &binary) }

// logWriter writes the harness's progress lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls fn every 100ms until it returns nil, failing the test
// with what and fn's last error once total has passed.
func eventually(t *testing.T, total time.Duration, what string, fn func() error) {
	t.Helper()
	testenv.CheckFor(t, total, 100*time.Millisecond, func() error {
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// receive waits for the message id on c.
func receive(t *testing.T, c *client.Client, id string, total time.Duration) natter.Message {
	t.Helper()
	timeout := time.After(total)
	for {
		select {
		case m := <-c.Messages():
			if m.ID == id {
				return m
			}
		case <-timeout:
			t.Fatalf("%s did not receive %s within %v", c.User(), id, total)
		}
	}
}

// TestCluster starts the default topology (3 NATS nodes, the store, 2
// edges, 2 processes per worker role) and checks it is one system: the NATS
// nodes form one JetStream meta group and MSGS has 3 replicas; a message
// sent on edge 1 reaches a member on edge 2 and is archived in the store;
// an added worker gets the next name; a killed NATS node started again
// rejoins (3 current peers, MSGS caught up) and a message sent while it is
// down gets through; Stop leaves no process.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Binary: binary, Dir: t.TempDir(), Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(sctx)
	})

	// The topology.
	perRole := map[string]int{}
	for _, w := range c.Workers {
		if len(w.Roles) != 1 || !strings.HasPrefix(w.Name, "worker-"+w.Roles[0]+"-") {
			t.Fatalf("worker %s runs %v", w.Name, w.Roles)
		}
		perRole[w.Roles[0]]++
	}
	if len(c.NATS) != 3 || c.Store == nil || len(c.Edges) != 2 || len(perRole) != len(node.AllRoles) {
		t.Fatalf("topology: %d nats, store %v, %d edges, roles %v", len(c.NATS), c.Store != nil, len(c.Edges), perRole)
	}
	for role, n := range perRole {
		if n != 2 {
			t.Fatalf("role %s has %d processes, want 2", role, n)
		}
	}
	for _, p := range c.Procs() {
		if !p.Running() || p.PID() == 0 {
			t.Fatalf("%s not running", p.Name)
		}
	}

	// One NATS cluster; MSGS at R3.
	if mi, err := c.MetaCluster(ctx); err != nil || mi.Peers != 3 || mi.Current != 3 {
		t.Fatalf("meta group: %+v %v", mi, err)
	}
	nc, err := nats.Connect(c.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msgsReplicas := func() (leader string, current int, err error) {
		s, err := js.Stream(ctx, subjects.StreamMsgs)
		if err != nil {
			return "", 0, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return "", 0, err
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
			return "", 0, fmt.Errorf("MSGS: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
		}
		current = 1
		for _, r := range info.Cluster.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if len(info.Cluster.Replicas) != 2 {
			return "", 0, fmt.Errorf("MSGS: %d peers besides the leader, want 2", len(info.Cluster.Replicas))
		}
		return info.Cluster.Leader, current, nil
	}
	if _, _, err := msgsReplicas(); err != nil {
		t.Fatal(err)
	}

	// A message from edge 1 to a member on edge 2, archived in the store.
	urls := c.EdgeURLs()
	alice, err := client.Dial(ctx, client.Config{URLs: urls[:1], Token: c.Token("alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, client.Config{URLs: urls[1:2], Token: c.Token("bob")})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	conv, err := alice.CreateGroup(ctx, "cluster", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := alice.Send(ctx, conv.ID, "across edges")
	if err != nil {
		t.Fatal(err)
	}
	if m := receive(t, bob, ack.ID, time.Minute); m.Body != "across edges" || m.From != "alice" {
		t.Fatalf("bob got %+v", m)
	}
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(c.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	archived := func(id string) func() error {
		return func() error {
			var m natter.Message
			err := mc.Database("natter").Collection(store.CollMessages).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
			if err == nil && m.Conv != conv.ID {
				err = fmt.Errorf("archived in %s", m.Conv)
			}
			return err
		}
	}
	eventually(t, time.Minute, "message archived in the store", archived(ack.ID))

	// One more worker.
	w, err := c.AddWorker(ctx, node.RolePersist)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "worker-persist-3" || len(c.Procs()) != 3+1+2+2*len(node.AllRoles)+1 {
		t.Fatalf("added %s; %d processes", w.Name, len(c.Procs()))
	}

	// Kill a NATS node: messages still flow; started again, it rejoins.
	n2 := c.NATS[1]
	oldPID := n2.PID()
	n2.Kill()
	if n2.Running() || n2.ExitErr() == nil {
		t.Fatalf("%s still runs after Kill (exit %v)", n2.Name, n2.ExitErr())
	}
	ack2, err := alice.Send(ctx, conv.ID, "one node down")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, bob, ack2.ID, time.Minute)
	if err := n2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n2.PID() == oldPID {
		t.Fatalf("%s restarted with the same pid %d", n2.Name, oldPID)
	}
	if err := c.WaitNATS(ctx); err != nil {
		t.Fatal(err)
	}
	if mi, err := c.MetaCluster(ctx); err != nil || mi.Peers != 3 || mi.Current != 3 {
		t.Fatalf("meta group after the restart: %+v %v", mi, err)
	}
	eventually(t, time.Minute, "MSGS replicas current after the restart", func() error {
		_, current, err := msgsReplicas()
		if err == nil && current != 3 {
			err = fmt.Errorf("%d of 3 replicas current", current)
		}
		return err
	})
	if log, _ := os.ReadFile(n2.LogPath); strings.Count(string(log), "natter cluster: starting "+n2.Name) != 2 {
		t.Fatalf("%s's log does not hold both runs:\n%s", n2.Name, n2.LogTail(20))
	}
	eventually(t, time.Minute, "message sent with a node down archived", archived(ack2.ID))

	// Stop: nothing left.
	procs := c.Procs()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Running() {
			t.Fatalf("%s runs after Stop", p.Name)
		}
		if err := syscall.Kill(p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s: pid %d still exists after Stop (%v)", p.Name, p.PID(), err)
		}
	}
}

// TestWorkerStartsDuringNATSOutage starts a worker while two of the three
// NATS nodes are down (no JetStream quorum: the stream definitions cannot be
// read): the worker waits for the cluster instead of exiting, and is ready
// once the nodes are back.
func TestWorkerStartsDuringNATSOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := cluster.Start(ctx, cluster.Options{Binary: binary, Dir: dir, Edges: 1, WorkerReplicas: 1, Combined: true, Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(sctx)
	})
	c.NATS[1].Kill()
	c.NATS[2].Kill()
	added := make(chan error, 1)
	var w *cluster.Proc
	go func() {
		var err error
		w, err = c.AddWorker(ctx, node.RolePersist)
		added <- err
	}()
	// The new worker has started but cannot read its stream definitions:
	// it says so and retries.
	logPath := filepath.Join(dir, "logs", "worker-persist-1.log")
	eventually(t, time.Minute, "the worker retries JetStream", func() error {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "jetstream not answering yet") {
			return fmt.Errorf("no retry logged yet:\n%s", b)
		}
		return nil
	})
	for _, n := range c.NATS[1:] {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-added; err != nil {
		t.Fatalf("worker started during the outage: %v", err)
	}
	if !w.Running() {
		t.Fatal("worker exited")
	}
}
