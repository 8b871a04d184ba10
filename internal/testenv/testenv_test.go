package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
)

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// TestCheckFor: a condition that comes true in time passes; one that never
// does fails after total with fn's last error, having been tried again
// after the deadline.
func TestCheckFor(t *testing.T) {
	t.Parallel()
	t.Run("met", func(t *testing.T) {
		t.Parallel()
		calls := 0
		testenv.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if calls != 3 {
			t.Fatalf("fn called %d times, want 3", calls)
		}
	})
	t.Run("unmet", func(t *testing.T) {
		t.Parallel()
		r := &recorder{TB: t}
		start := time.Now()
		calls := 0
		testenv.CheckFor(r, 50*time.Millisecond, 10*time.Millisecond, func() error {
			calls++
			return fmt.Errorf("try %d", calls)
		})
		if waited := time.Since(start); waited < 50*time.Millisecond {
			t.Errorf("failed after %v, before the deadline", waited)
		}
		if want := fmt.Sprintf("condition not met after 50ms: try %d", calls); r.failed != want {
			t.Errorf("failure %q, want %q", r.failed, want)
		}
	})
}

// TestStartNATS: the server runs JetStream on a free loopback port with its
// store under a temp dir; started again on the same port and store dir it
// still has the stream; it is gone when the test that started it ends.
func TestStartNATS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var port int
	t.Run("first", func(t *testing.T) {
		s, _, js := testenv.StartJetStream(t, testenv.WithStoreDir(dir))
		port = s.Addr().(*net.TCPAddr).Port
		if port == 4222 {
			t.Fatal("listening on the default port, want a free one")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", port), time.Second); err == nil {
		t.Fatal("server still accepts connections after its test ended")
	}
	_, _, js := testenv.StartJetStream(t, testenv.WithStoreDir(dir), testenv.WithPort(port))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream has %d messages after the restart, want 1", n)
	}
}

// TestNoWorkersNoMongo: testenv stays importable from edge/ and client/
// tests: nothing it depends on is under workers/ or is the store (the
// MongoDB driver, FerretDB, SQLite).
func TestNoWorkersNoMongo(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{ // as TestWalls (walls_test.go)
		"github.com/natter-im/natter/workers/",
		"go.mongodb.org/mongo-driver",
		"github.com/FerretDB/",
		"modernc.org/sqlite",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("testenv depends on %s: edge/ and client/ tests could no longer use it without linking the store", dep)
			}
		}
	}
}
