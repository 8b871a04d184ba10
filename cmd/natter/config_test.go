package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/internal/node"
)

// runBinary runs the natter binary with args (and extra environment) to its
// end, bounded, and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("natter %s: still running after 30s (the value was taken?):\n%s", strings.Join(args, " "), stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestOutOfRangeValues: every numeric and duration setting refuses a value
// outside its range (docs/config.md) with exit 2 and one line naming the
// flag, whether the value comes from the flag or the variable, instead of
// replacing it with the default.
func TestOutOfRangeValues(t *testing.T) {
	t.Parallel()
	dev := func(extra ...string) []string {
		return append([]string{"dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", "-1"}, extra...)
	}
	edge := func(extra ...string) []string {
		return append([]string{"edge", "--nats-url", "nats://127.0.0.1:1", "--http", "127.0.0.1:0", "--jwt-secret", strings.Repeat("s", 32)}, extra...)
	}
	worker := func(extra ...string) []string {
		return append([]string{"worker", "--nats-url", "nats://127.0.0.1:1", "--admin", "127.0.0.1:0"}, extra...)
	}
	nats := func(extra ...string) []string {
		return append([]string{"nats", "--store", t.TempDir(), "--port", "-1", "--http-port", "0"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"rate -1", dev("--rate", "-1"), "", `--rate: -1 is out of range`},
		{"rate 0", dev("--rate", "0"), "", `--rate: 0 is out of range`},
		{"max-body 0", dev("--max-body", "0"), "", `--max-body: 0 is out of range`},
		{"max-body env 0", dev(), "NATTER_MAX_BODY=0", `--max-body (NATTER_MAX_BODY): 0 is out of range`},
		{"rate env -1", edge(), "NATTER_RATE=-1", `--rate (NATTER_RATE): -1 is out of range`},
		{"burst 0", dev("--burst", "0"), "", "--burst:"},
		{"send-queue 0", edge("--send-queue", "0"), "", "--send-queue:"},
		{"ping-interval 0", dev("--ping-interval", "0"), "", "--ping-interval:"},
		{"auth-timeout -1s", dev("--auth-timeout", "-1s"), "", "--auth-timeout:"},
		{"lame-duck 0", dev("--lame-duck", "0s"), "", "--lame-duck:"},
		{"presence-lease 1s", edge("--presence-lease", "1s"), "", "--presence-lease:"},
		{"presence-lease env 2h", edge(), "NATTER_PRESENCE_LEASE=2h", "--presence-lease (NATTER_PRESENCE_LEASE):"},
		{"typing-rate 0", dev("--typing-rate", "0"), "", "--typing-rate:"},
		{"typing-burst 0", edge("--typing-burst", "0"), "", "--typing-burst:"},
		{"typing-max-members 1", dev("--typing-max-members", "1"), "", "--typing-max-members:"},
		{"edge-id a.b", edge("--edge-id", "a.b"), "", `--edge-id (NATTER_EDGE_ID): "a.b"`},
		{"nats-port 0", dev("--nats-port", "0"), "", "--nats-port:"},
		{"nats-port 70000", dev("--nats-port", "70000"), "", "--nats-port:"},
		{"sync-interval -1s", dev("--sync-interval", "-1s"), "", "--sync-interval:"},
		{"replicas 0", dev("--replicas", "0"), "", "--replicas:"},
		{"replicas 6", worker("--replicas", "6"), "", "--replicas:"},
		{"hot-tier 0", dev("--hot-tier", "0"), "", "--hot-tier:"},
		{"dedup-window 0", dev("--dedup-window", "0s"), "", "--dedup-window:"},
		{"idem-ttl 0", dev("--idem-ttl", "0s"), "", "--idem-ttl:"},
		{"max-deliver 0", worker("--max-deliver", "0"), "", "--max-deliver:"},
		{"ack-wait 0", worker("--ack-wait", "0s"), "", "--ack-wait:"},
		{"events-max-age env 0", worker(), "NATTER_EVENTS_MAX_AGE=0s", "--events-max-age (NATTER_EVENTS_MAX_AGE):"},
		{"events-dedup-window 0", dev("--events-dedup-window", "0s"), "", "--events-dedup-window:"},
		{"service-max-body -1", worker("--service-max-body", "-1"), "", "--service-max-body:"},
		{"fanout-broadcast-min -1", worker("--fanout-broadcast-min", "-1"), "", "--fanout-broadcast-min:"},
		{"read-push-interval -1s", worker("--read-push-interval", "-1s"), "", "--read-push-interval:"},
		{"read-push-interval 2m", dev("--read-push-interval", "2m"), "", "--read-push-interval:"},
		{"shutdown-timeout 0", worker("--shutdown-timeout", "0s"), "", "--shutdown-timeout:"},
		{"streams apply replicas 0", []string{"streams", "apply", "--nats-url", "nats://127.0.0.1:1", "--replicas", "0"}, "", "--replicas:"},
		{"nats port 0", nats("--port", "0"), "", "--port:"},
		{"nats http-port -2", nats("--http-port", "-2"), "", "--http-port:"},
		{"nats cluster-port 65536", nats("--cluster-port", "65536"), "", "--cluster-port:"},
		{"nats lame-duck -1s", nats("--lame-duck", "-1s"), "", "--lame-duck:"},
		{"services wait 0", []string{"services", "--nats-url", "nats://127.0.0.1:1", "--wait", "0s"}, "", "--wait:"},
		{"cluster up edges 0", []string{"cluster", "up", "--dir", t.TempDir(), "--edges", "0"}, "", "--edges:"},
		{"cluster up ready-timeout 0", []string{"cluster", "up", "--dir", t.TempDir(), "--ready-timeout", "0s"}, "", "--ready-timeout:"},
		{"cluster down stop-timeout 0", []string{"cluster", "down", "--dir", t.TempDir(), "--stop-timeout", "0s"}, "", "--stop-timeout:"},
		{"token ttl 0", []string{"token", "--user", "alice", "--data", t.TempDir(), "--ttl", "0s"}, "", "--ttl:"},
		{"token ttl env -1h", []string{"token", "--user", "alice", "--data", t.TempDir()}, "NATTER_TOKEN_TTL=-1h", "--ttl (NATTER_TOKEN_TTL):"},
		{"bench size 0", []string{"bench", "relay", "--size", "0"}, "", "--size:"},
		{"bench hold env 0", []string{"bench", "idle"}, "NATTER_BENCH_HOLD=0s", "--hold (NATTER_BENCH_HOLD):"},
		{"bench rate-frac 2", []string{"bench", "persist", "--rate-frac", "2"}, "", "--rate-frac:"},
		{"bench dial-conc 0", []string{"bench", "relay", "--dial-conc", "0"}, "", "--dial-conc:"},
		{"bench conns -1", []string{"bench", "relay", "--conns", "-1"}, "", "--conns:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			code, _, stderr := runBinary(t, env, tc.args...)
			out := strings.TrimSpace(stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", code, out)
			}
			if lines := strings.Split(out, "\n"); len(lines) != 1 {
				t.Fatalf("want one line, got %d:\n%s", len(lines), out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}

// TestDurationNeedsUnit: a duration given as a bare number says that it
// needs a unit, for the flag and for the variable.
func TestDurationNeedsUnit(t *testing.T) {
	t.Parallel()
	args := []string{"dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", "-1"}
	code, _, stderr := runBinary(t, nil, append(args, "--ping-interval", "5")...)
	if want := `natter: --ping-interval: "5" needs a unit, e.g. 5s`; code != 2 || strings.TrimSpace(stderr) != want {
		t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
	code, _, stderr = runBinary(t, []string{"NATTER_ACK_WAIT=30"}, args...)
	if want := `natter: --ack-wait (NATTER_ACK_WAIT): "30" needs a unit, e.g. 30s`; code != 2 || strings.TrimSpace(stderr) != want {
		t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
	code, _, stderr = runBinary(t, nil, "bench", "relay", "--duration", "10")
	if want := `"10" needs a unit, e.g. 10s`; code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("bench: exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

// TestHelpExitsZero: --help and -h of every command and subcommand print
// its usage on stdout and exit 0.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	cmds := [][]string{{}, {"dev"}, {"edge"}, {"worker"}, {"streams"}, {"streams", "apply"}, {"nats"}, {"store"},
		{"cluster"}, {"cluster", "up"}, {"cluster", "down"}, {"cluster", "status"}, {"services"}, {"token"}, {"bench"}, {"bench", "relay"}}
	for _, cmd := range cmds {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string(nil), cmd...), h)
			code, stdout, stderr := runBinary(t, nil, args...)
			if code != 0 || !strings.Contains(stdout, "usage:") {
				t.Errorf("natter %s: exit %d, want 0 and the usage on stdout\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
			}
		}
	}
}

// edgeAuth is the verifier an edge started with args (edge flags) would
// use, built by the edge's own flag code.
func edgeAuth(t *testing.T, mode node.Mode, args ...string) *auth.Verifier {
	t.Helper()
	fs := newFlags("natter edge", "natter edge", &bytes.Buffer{})
	var common commonFlags
	common.register(fs, mode)
	var ef edgeFlags
	ef.register(fs, mode)
	if err := parse(fs, args); err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{Mode: mode}
	common.apply(&cfg)
	if err := ef.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(context.Background(), cfg.Edge.Auth)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mintCLI runs natter token with args and returns the token.
func mintCLI(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"token", "--user", "alice"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("natter token %v: exit %d: %s", args, code, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// TestTokenMatchesEdge: natter token, given the token flags (or variables)
// of an edge, mints a token that edge accepts: key ids follow one rule
// (docs/config.md, "Tokens").
func TestTokenMatchesEdge(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte(strings.Repeat("o", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	devKey := filepath.Join(data, "dev-jwt-secret")
	verify := func(name string, v *auth.Verifier, tok string) {
		t.Helper()
		c, err := v.Verify(tok)
		if err != nil || c.User != "alice" {
			t.Errorf("%s: edge refuses the token: %v (user %q)", name, err, c.User)
		}
	}
	// The dev key natter token creates under --data, given to an edge as its
	// secret file (the case of the issue: kid "dev" vs "default").
	tok := mintCLI(t, "--data", data)
	verify("dev key as --jwt-secret-file", edgeAuth(t, node.ModeEdge, "--jwt-secret-file", devKey), tok)
	verify("natter dev on the same --data", edgeAuth(t, node.ModeDev, "--data", data), tok)
	verify("secret file", edgeAuth(t, node.ModeEdge, "--jwt-secret-file", secret), mintCLI(t, "--jwt-secret-file", secret))
	verify("secret", edgeAuth(t, node.ModeEdge, "--jwt-secret", strings.Repeat("k", 40)), mintCLI(t, "--jwt-secret", strings.Repeat("k", 40)))
	keys := "k1:HS256:" + other + ",k2:HS256:" + secret
	verify("--jwt-keys", edgeAuth(t, node.ModeEdge, "--jwt-keys", keys), mintCLI(t, "--jwt-keys", keys))
	both := []string{"--jwt-secret-file", secret, "--jwt-keys", "k1:HS256:" + other, "--jwt-issuer", "https://id.example", "--jwt-audience", "natter"}
	verify("secret, keys, iss and aud", edgeAuth(t, node.ModeEdge, both...), mintCLI(t, both...))

	// The same variables for both.
	t.Setenv("NATTER_JWT_SECRET_FILE", secret)
	t.Setenv("NATTER_JWT_AUDIENCE", "natter")
	verify("variables", edgeAuth(t, node.ModeEdge), mintCLI(t))

	// Public keys only verify: natter token says so.
	var stdout, stderr bytes.Buffer
	t.Setenv("NATTER_JWT_SECRET_FILE", "")
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"token", "--user", "alice", "--jwks-file", jwks}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "HS256") {
		t.Fatalf("token with only a JWKS: exit %d: %s", code, stderr.String())
	}
}
