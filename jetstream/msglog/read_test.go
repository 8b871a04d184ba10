package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
)

// TestPages reads pages of a 300-message conversation (blocks of 64 end at
// 64, 128, 192, 256) before and after many seqs.
func TestPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	w, _ := newLog(t, s)
	appendN(t, w, "c1", 300)
	r, _ := newLog(t, s) // a reader without the writer's cache
	const n = 300

	for _, tc := range []struct {
		before   uint64
		limit    int
		from, to uint64
	}{
		{0, 50, 251, 300},
		{0, 1, 300, 300},
		{0, 1000, 1, 300},
		{301, 50, 251, 300},
		{5000, 50, 251, 300},
		{300, 50, 250, 299},
		{1, 50, 0, 0},
		{2, 50, 1, 1},
		{65, 64, 1, 64},
		{66, 1, 65, 65},
		{130, 2, 128, 129},
		{129, 128, 1, 128},
		{200, 300, 1, 199},
		{193, 64, 129, 192},
		{258, 3, 255, 257},
	} {
		t.Run(fmt.Sprintf("before %d limit %d", tc.before, tc.limit), func(t *testing.T) {
			t.Parallel()
			msgs, err := r.Before(ctx, "c1", tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := seqs(msgs), span(tc.from, tc.to); !slices.Equal(got, want) {
				t.Fatalf("seqs %v, want %v", got, want)
			}
			checkBodies(t, msgs)
		})
	}
	for _, tc := range []struct {
		after    uint64
		limit    int
		from, to uint64
	}{
		{0, 50, 1, 50},
		{0, 1, 1, 1},
		{0, 1000, 1, 300},
		{63, 2, 64, 65},
		{64, 64, 65, 128},
		{127, 1, 128, 128},
		{100, 100, 101, 200},
		{250, 50, 251, 300},
		{299, 50, 300, 300},
		{300, 50, 0, 0},
		{1000, 50, 0, 0},
	} {
		t.Run(fmt.Sprintf("after %d limit %d", tc.after, tc.limit), func(t *testing.T) {
			t.Parallel()
			msgs, head, err := r.After(ctx, "c1", tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if head != n {
				t.Fatalf("head %d, want %d", head, n)
			}
			if got, want := seqs(msgs), span(tc.from, tc.to); !slices.Equal(got, want) {
				t.Fatalf("seqs %v, want %v", got, want)
			}
			checkBodies(t, msgs)
		})
	}
	t.Run("batches cut short", func(t *testing.T) {
		t.Parallel()
		c, _ := newLog(t, s)
		msglog.SetBatchBytes(c, 1) // one entry per batch
		msgs, err := c.Before(ctx, "c1", 140, 70)
		if got, want := seqs(msgs), span(70, 139); err != nil || !slices.Equal(got, want) {
			t.Fatalf("Before: seqs %v, %v; want %v", got, err, want)
		}
		msgs, _, err = c.After(ctx, "c1", 290, 50)
		if got, want := seqs(msgs), span(291, 300); err != nil || !slices.Equal(got, want) {
			t.Fatalf("After: seqs %v, %v; want %v", got, err, want)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		t.Parallel()
		if _, err := r.Before(ctx, "c1", 0, 0); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("Before limit 0: %v, want ErrInvalid", err)
		}
		if _, _, err := r.After(ctx, "c1", 0, -1); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("After limit -1: %v, want ErrInvalid", err)
		}
		if _, _, err := r.After(ctx, "im.msg.>", 0, 10); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("After with a wildcard conv: %v, want ErrInvalid", err)
		}
	})
	t.Run("empty conversation", func(t *testing.T) {
		t.Parallel()
		if msgs, err := r.Before(ctx, "nobody", 0, 10); err != nil || len(msgs) != 0 {
			t.Errorf("Before: %v, %v", msgs, err)
		}
		if msgs, head, err := r.After(ctx, "nobody", 0, 10); err != nil || len(msgs) != 0 || head != 0 {
			t.Errorf("After: %v, head %d, %v", msgs, head, err)
		}
	})
}

// checkBodies checks that each message is the one appendN sent with its seq.
func checkBodies(t *testing.T, msgs []natter.Message) {
	t.Helper()
	for _, m := range msgs {
		if m.Body != fmt.Sprint("body ", m.Seq) {
			t.Fatalf("seq %d has body %q", m.Seq, m.Body)
		}
	}
}

// TestTrimmed reads a conversation of 300 messages with a hot tier of 100.
func TestTrimmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{HotTier: 100})
	w, _ := newLog(t, s)
	appendN(t, w, "c1", 300)
	r, _ := newLog(t, s)

	trimmed := func(t *testing.T, err error) {
		t.Helper()
		var te *msglog.TrimmedError
		if !errors.Is(err, msglog.ErrTrimmed) || !errors.As(err, &te) || te.Oldest != 201 || te.Conv != "c1" {
			t.Fatalf("err %v, want a TrimmedError with oldest 201", err)
		}
	}
	for _, tc := range []struct {
		before   uint64
		limit    int
		from, to uint64
		trimmed  bool
	}{
		{0, 50, 251, 300, false},
		{0, 100, 201, 300, false},
		{0, 101, 201, 300, true},
		{220, 50, 201, 219, true},
		{202, 1, 201, 201, false},
		{201, 10, 0, 0, true},
		{150, 10, 0, 0, true},
	} {
		t.Run(fmt.Sprintf("before %d limit %d", tc.before, tc.limit), func(t *testing.T) {
			t.Parallel()
			msgs, err := r.Before(ctx, "c1", tc.before, tc.limit)
			if tc.trimmed {
				trimmed(t, err)
			} else if err != nil {
				t.Fatal(err)
			}
			if got, want := seqs(msgs), span(tc.from, tc.to); !slices.Equal(got, want) {
				t.Fatalf("seqs %v, want %v", got, want)
			}
			checkBodies(t, msgs)
		})
	}
	for _, tc := range []struct {
		after    uint64
		limit    int
		from, to uint64
		trimmed  bool
	}{
		{0, 50, 0, 0, true},
		{199, 50, 0, 0, true},
		{200, 50, 201, 250, false},
		{260, 100, 261, 300, false},
	} {
		t.Run(fmt.Sprintf("after %d limit %d", tc.after, tc.limit), func(t *testing.T) {
			t.Parallel()
			msgs, head, err := r.After(ctx, "c1", tc.after, tc.limit)
			if tc.trimmed {
				trimmed(t, err)
			} else if err != nil {
				t.Fatal(err)
			}
			if head != 300 {
				t.Fatalf("head %d, want 300", head)
			}
			if got, want := seqs(msgs), span(tc.from, tc.to); !slices.Equal(got, want) {
				t.Fatalf("seqs %v, want %v", got, want)
			}
			checkBodies(t, msgs)
		})
	}
}

func TestHeads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, streams.Config{})
	w, _ := newLog(t, s)
	appendN(t, w, "a", 3)
	appendN(t, w, "b", 1)
	r, _ := newLog(t, s)

	if h, err := r.Head(ctx, "a"); err != nil || h != 3 {
		t.Fatalf("Head(a) = %d, %v; want 3", h, err)
	}
	if h, err := r.Head(ctx, "none"); err != nil || h != 0 {
		t.Fatalf("Head(none) = %d, %v; want 0", h, err)
	}
	got, err := r.Heads(ctx, []string{"a", "b", "none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"a": 3, "b": 1, "none": 0}; !maps.Equal(got, want) {
		t.Fatalf("Heads = %v, want %v", got, want)
	}
	if got, err := r.Heads(ctx, []string{"none"}); err != nil || !maps.Equal(got, map[string]uint64{"none": 0}) {
		t.Fatalf("Heads(none) = %v, %v", got, err)
	}

	// More conversations than one request carries.
	var many []string
	want := map[string]uint64{}
	for i := range 600 {
		c := fmt.Sprint("g", i)
		many, want[c] = append(many, c), 0
		if i%7 == 0 {
			appendN(t, w, c, 1+i%3)
			want[c] = uint64(1 + i%3)
		}
	}
	if got, err := r.Heads(ctx, many); err != nil || !maps.Equal(got, want) {
		t.Fatalf("Heads of 600: %v (diff below)", err)
	}
	if _, err := r.Heads(ctx, []string{"a", "b.c"}); !errors.Is(err, msglog.ErrInvalid) {
		t.Fatalf("Heads with an invalid id: %v, want ErrInvalid", err)
	}
}
