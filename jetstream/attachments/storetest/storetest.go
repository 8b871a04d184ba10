// Package storetest is the test suite every attachments.Store passes: the
// object store and S3 run the same checks.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/natter-im/natter/jetstream/attachments"
)

// Run runs the suite against st.
func Run(t *testing.T, st attachments.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := make([]byte, 600<<10+123) // several object store chunks, one S3 part
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	t.Run("put and get whole", func(t *testing.T) {
		// A reader that returns a few bytes at a time, and no size.
		n, err := st.Put(ctx, "a_whole", &trickle{r: bytes.NewReader(data)}, -1, "application/octet-stream")
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Put = %d, %v; want %d", n, err, len(data))
		}
		got := read(t, st, "a_whole", 0, -1)
		if !bytes.Equal(got, data) {
			t.Fatalf("Get: %d bytes, differ from the %d put", len(got), len(data))
		}
	})
	t.Run("ranges", func(t *testing.T) {
		if _, err := st.Put(ctx, "a_range", bytes.NewReader(data), int64(len(data)), "image/png"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ off, n int64 }{{0, 1}, {5, 100}, {128<<10 - 3, 10}, {int64(len(data)) - 7, -1}, {int64(len(data)) - 7, 7}, {300 << 10, 200 << 10}} {
			got := read(t, st, "a_range", c.off, c.n)
			end := int64(len(data))
			if c.n >= 0 {
				end = c.off + c.n
			}
			if !bytes.Equal(got, data[c.off:end]) {
				t.Fatalf("Get(%d, %d): %d bytes, not bytes %d..%d", c.off, c.n, len(got), c.off, end)
			}
		}
	})
	t.Run("replace", func(t *testing.T) {
		for _, s := range []string{"first", "second, longer"} {
			if _, err := st.Put(ctx, "a_replace", bytes.NewReader([]byte(s)), int64(len(s)), "text/plain"); err != nil {
				t.Fatal(err)
			}
		}
		if got := read(t, st, "a_replace", 0, -1); string(got) != "second, longer" {
			t.Fatalf("Get after replace = %q", got)
		}
	})
	t.Run("missing and delete", func(t *testing.T) {
		if _, err := st.Get(ctx, "a_missing", 0, -1); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Get of a missing object: %v, want ErrNotFound", err)
		}
		if err := st.Delete(ctx, "a_missing"); err != nil {
			t.Fatalf("Delete of a missing object: %v", err)
		}
		if _, err := st.Put(ctx, "a_del", bytes.NewReader([]byte("x")), 1, "text/plain"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "a_del"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, "a_del", 0, -1); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
	})
	t.Run("failed put stores nothing", func(t *testing.T) {
		boom := errors.New("client went away")
		_, err := st.Put(ctx, "a_failed", io.MultiReader(bytes.NewReader(data[:300<<10]), errReader{boom}), -1, "text/plain")
		if err == nil {
			t.Fatal("Put of a reader that fails: no error")
		}
		if _, err := st.Get(ctx, "a_failed", 0, -1); !errors.Is(err, attachments.ErrNotFound) {
			t.Fatalf("Get after a failed Put: %v, want ErrNotFound", err)
		}
	})
}

func read(t *testing.T, st attachments.Store, name string, off, n int64) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), name, off, n)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): %v", name, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): read: %v", name, off, n, err)
	}
	return b
}

type trickle struct{ r io.Reader }

func (t *trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), 1000)]) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
