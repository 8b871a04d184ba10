package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/limits"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
)

var testKey = auth.Key{ID: "k", Alg: auth.AlgHS256, Secret: []byte("natter-client-test-secret-0123456789")}

func edgeConfig() node.EdgeConfig {
	return node.EdgeConfig{
		Auth:     auth.Config{Keys: []auth.Key{testKey}, Leeway: time.Millisecond}, // tokens expire on time in these tests
		Rate:     10000,
		Burst:    10000,
		Limits:   limits.Config{UserRate: 10_000, UserBurst: 10_000, UserConns: -1, IPConnRate: -1, IPConns: -1},
		LameDuck: 100 * time.Millisecond,
	}
}

// startDev starts a whole natter (embedded NATS and store, every worker,
// one edge) and stops it at cleanup.
func startDev(t testing.TB) *node.Node {
	t.Helper()
	return startNode(t, node.Config{Mode: node.ModeDev, DataDir: t.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", Edge: edgeConfig()})
}

// startEdge starts an extra edge on the NATS of dev at addr ("127.0.0.1:0"
// for any port).
func startEdge(t testing.TB, dev *node.Node, addr string) *node.Node {
	t.Helper()
	return startNode(t, node.Config{Mode: node.ModeEdge, NATSURL: dev.NATSURL(), HTTPAddr: addr, Edge: edgeConfig()})
}

func startNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %v node: %v", cfg.Mode, err)
	}
	t.Cleanup(func() { stopNode(t, n) })
	return n
}

func stopNode(t testing.TB, n *node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
}

func wsURL(n *node.Node) string { return "ws://" + n.Addr() + protocol.Path }

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.Mint(testKey, nil, auth.MintClaims{User: user, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// uniq returns prefix with a random suffix, so that tests never share ids.
func uniq(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// dial connects user to urls and closes the client at cleanup.
func dial(t testing.TB, urls []string, user string, mut ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{URLs: urls, Token: token(t, user), Backoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	for _, f := range mut {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv reads n messages from c, failing if they do not come within 20s.
func recv(t testing.TB, c *client.Client, n int) []natter.Message {
	t.Helper()
	out := make([]natter.Message, 0, n)
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for len(out) < n {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: messages closed after %d of %d (err %v)", c.User(), len(out), n, c.Err())
			}
			out = append(out, m)
		case <-timeout.C:
			t.Fatalf("%s: got %d of %d messages (stats %+v)", c.User(), len(out), n, c.Stats())
		}
	}
	return out
}

// quiet fails if c delivers another message within d: used after recv to
// check that nothing is delivered twice. A deadline, not synchronisation.
func quiet(t testing.TB, c *client.Client, d time.Duration) {
	t.Helper()
	select {
	case m := <-c.Messages():
		t.Fatalf("%s: unexpected extra message %s seq %d %q", c.User(), m.Conv, m.Seq, m.Body)
	case <-time.After(d):
	}
}

// checkSeqs checks that msgs are exactly seqs from..to of conv with the
// given bodies (nil: any), in order.
func checkSeqs(t testing.TB, msgs []natter.Message, conv string, from uint64, bodies []string) {
	t.Helper()
	for i, m := range msgs {
		if m.Conv != conv || m.Seq != from+uint64(i) {
			t.Fatalf("message %d: got %s seq %d, want %s seq %d", i, m.Conv, m.Seq, conv, from+uint64(i))
		}
		if bodies != nil && m.Body != bodies[i] {
			t.Fatalf("message %d (seq %d): body %q, want %q", i, m.Seq, m.Body, bodies[i])
		}
	}
}

// freeAddr returns a local address with a port that was free just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i+1)
	}
	return out
}
