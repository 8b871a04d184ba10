package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsauth"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestSecureCluster: with Secure, the NATS nodes require TLS and a tier's
// nkey; streams apply (admin), the workers and the edges connect with their
// tiers' credentials, a message goes from one user to another through the
// edge, no process logs a permissions violation, a plain or keyless client
// is refused, and the edge tier's credential is refused a worker-only
// subject.
func TestSecureCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Binary: binary, Dir: t.TempDir(), Log: logWriter{t},
		NATSNodes: 3, Edges: 1, WorkerReplicas: 1, Combined: true, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(sctx)
	})
	for _, p := range append(append([]*cluster.Proc(nil), c.Edges...), c.Workers...) {
		if !strings.Contains(strings.Join(p.Args, " "), "--nats-nkey "+c.AuthDir()) {
			t.Fatalf("%s runs without a tier nkey: %v", p.Name, p.Args)
		}
	}
	if st := c.State(); st.AuthDir != c.AuthDir() {
		t.Fatalf("state auth dir %q", st.AuthDir)
	}

	// Plain and keyless clients are refused.
	if nc, err := nats.Connect(c.NATSURL(), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain client without a key connected")
	}
	if nc, err := nats.Connect(c.NATSURL(), nats.RootCAs(c.CAFile()), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a TLS client without a key connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a TLS client without a key: %v", err)
	}

	// End to end through the edge.
	urls := c.EdgeURLs()
	alice, err := client.Dial(ctx, client.Config{URLs: urls, Token: c.Token("alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Dial(ctx, client.Config{URLs: urls, Token: c.Token("bob")})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	conv, err := alice.CreateGroup(ctx, "secure", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := alice.Send(ctx, conv.ID, "over tls with nkeys")
	if err != nil {
		t.Fatal(err)
	}
	if m := receive(t, bob, ack.ID, time.Minute); m.Body != "over tls with nkeys" {
		t.Fatalf("bob got %+v", m)
	}

	// The edge tier's credential may not publish events (the worker
	// tier's).
	opts, err := c.NATSOptions(natsauth.TierEdge)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asyncErrs []error
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		asyncErrs = append(asyncErrs, err)
		mu.Unlock()
	}))
	nc := testenv.Connect(t, c.NATSURL(), opts...)
	denied := subjects.Event("message_created", conv.ID)
	if err := nc.Publish(denied, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_ = nc.FlushTimeout(5 * time.Second)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range asyncErrs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), denied) {
				return nil
			}
		}
		return fmt.Errorf("no permissions violation for %s", denied)
	})

	// natter services as an operator lists the edge and every role.
	testenv.CheckFor(t, 30*time.Second, 500*time.Millisecond, func() error {
		out, err := exec.CommandContext(ctx, binary, "services", "--nats-url", c.NATSURL(), "--nats-tls-ca", c.CAFile(),
			"--nats-nkey", c.SeedFile(natsauth.TierAdmin), "--wait", "2s").CombinedOutput()
		if err != nil {
			return fmt.Errorf("natter services: %v\n%s", err, out)
		}
		for _, want := range []string{subjects.ServiceEdge, subjects.ServiceName("persist"), subjects.ServiceConversations} {
			if !strings.Contains(string(out), want) {
				return fmt.Errorf("natter services does not list %s:\n%s", want, out)
			}
		}
		return nil
	})

	for _, p := range c.Procs() {
		if p.Kind == cluster.KindNATS || p.Kind == cluster.KindStore {
			continue
		}
		if log, _ := os.ReadFile(p.LogPath); strings.Contains(strings.ToLower(string(log)), "permissions violation") {
			t.Errorf("%s was refused by the permissions:\n%s", p.Name, p.LogTail(30))
		}
	}
}
