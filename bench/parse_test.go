package bench

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/gctune"
)

// TestParseEnv checks the precedence of the bench settings: the flag, then
// the NATTER_BENCH_* variable, then the default.
func TestParseEnv(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("file-secret-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATTER_BENCH_CONNS", "7")
	t.Setenv("NATTER_BENCH_DURATION", "3s")
	t.Setenv("NATTER_BENCH_URL", "ws://127.0.0.1:1/v1/ws,ws://127.0.0.1:2/v1/ws")
	t.Setenv("NATTER_BENCH_JWT_SECRET", "env-secret-0123456789abcdef0123456789")
	t.Setenv("NATTER_BENCH_SOURCE_ADDRS", "127.0.0.2-127.0.0.4")
	c, err := parse([]string{"relay", "--duration", "5s", "--edge-pid", "12,34", "--edge-pid", "56"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Conns != 7 || c.Duration != 5*time.Second || len(c.URLs) != 2 || c.JWTSecret != "env-secret-0123456789abcdef0123456789" ||
		len(c.SourceAddrs) != 3 || !slices.Equal(c.EdgePIDs, []int{12, 34, 56}) || c.Procs != 1 {
		t.Errorf("parsed %+v", c)
	}
	c, err = parse([]string{"relay", "--jwt-secret-file", secret, "--procs", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTSecret != "file-secret-0123456789abcdef0123456789" || c.Procs != 0 {
		t.Errorf("secret %q procs %d", c.JWTSecret, c.Procs)
	}
	t.Setenv("NATTER_BENCH_CONNS", "many")
	if _, err := parse([]string{"relay"}, io.Discard); err == nil {
		t.Error("a bad NATTER_BENCH_CONNS was accepted")
	}
}

// TestParseRoles: --roles takes natter dev's worker roles, refuses others,
// and persist refuses a list without its own role.
func TestParseRoles(t *testing.T) {
	c, err := parse([]string{"relay", "--roles", "conversations, fanout"}, io.Discard)
	if err != nil || !slices.Equal(c.Roles, []string{"conversations", "fanout"}) {
		t.Fatalf("roles %v, %v", c.Roles, err)
	}
	for _, args := range [][]string{{"relay", "--roles", "conversations,archive"}, {"relay", "--roles", ","}, {"persist", "--roles", "conversations,fanout"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestProcAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"0200007F:0050", "127.0.0.2:80"},
		{"00000000000000000000000001000000:0016", "[::1]:22"},
		{"0000000000000000FFFF00000100007F:01BB", "127.0.0.1:443"},
	} {
		got, err := procAddr(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("%s: %v %v, want %s", c.in, got, err, c.want)
		}
	}
	if p := localPort("ws://127.0.0.1:8080/v1/ws"); p != 8080 {
		t.Errorf("local port %d", p)
	}
	if p := localPort("nats://192.0.2.1:4222"); p != 0 {
		t.Errorf("a remote host gave port %d", p)
	}
}

// TestParseGC: the in-process server's collector is natter dev's default
// unless --gc-percent / --memory-limit (or their variables) say otherwise.
func TestParseGC(t *testing.T) {
	c, err := parse([]string{"relay"}, io.Discard)
	if err != nil || c.GC != gctune.Default() {
		t.Fatalf("default GC %+v, %v; want %+v", c.GC, err, gctune.Default())
	}
	t.Setenv("NATTER_BENCH_MEMORY_LIMIT", "300MiB")
	c, err = parse([]string{"relay", "--gc-percent", "250"}, io.Discard)
	if err != nil || c.GC != (gctune.Config{Percent: 250, MemoryLimit: 300 << 20}) {
		t.Fatalf("GC %+v, %v; want percent 250, limit 300MiB", c.GC, err)
	}
	for _, args := range [][]string{{"relay", "--gc-percent", "0"}, {"relay", "--memory-limit", "1GB"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
