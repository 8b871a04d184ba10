package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestPrecedenceAndRanges(t *testing.T) {
	var n int
	var d time.Duration
	var s string
	newSet := func() *FlagSet {
		f := New("cmd", "usage: cmd\n", &bytes.Buffer{})
		f.Int(&n, "n", "CLI_TEST_N", 5, "n", Min(1))
		f.Duration(&d, "d", "CLI_TEST_D", time.Second, "d", Positive[time.Duration]())
		f.String(&s, "s", "CLI_TEST_S", "def", "s")
		return f
	}
	t.Setenv("CLI_TEST_N", "7")
	t.Setenv("CLI_TEST_S", "")
	f := newSet()
	if err := f.Parse([]string{"-d", "2s"}, false); err != nil {
		t.Fatal(err)
	}
	if n != 7 || d != 2*time.Second || s != "def" || !f.IsSet("n") || !f.IsSet("d") || f.IsSet("s") {
		t.Fatalf("n=%d d=%v s=%q set n=%v d=%v s=%v", n, d, s, f.IsSet("n"), f.IsSet("d"), f.IsSet("s"))
	}
	// The flag wins over the variable.
	if err := newSet().Parse([]string{"--n", "9"}, false); err != nil || n != 9 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--n", "0"}, "", "--n: 0 is out of range: want 1 or more"},
		{nil, "0", "--n (CLI_TEST_N): 0 is out of range: want 1 or more"},
		{nil, "x", `--n (CLI_TEST_N): "x" is not an integer`},
		{[]string{"--d", "5"}, "", `--d: "5" needs a unit, e.g. 5s`},
		{[]string{"--d", "0"}, "", "--d: 0s is out of range: want more than 0"},
		{[]string{"--d", "soon"}, "", `--d: "soon" is not a duration`},
		{[]string{"extra"}, "", `unexpected argument "extra"`},
	} {
		env := tc.env
		if env == "" {
			env = "3"
		}
		t.Setenv("CLI_TEST_N", env)
		err := newSet().Parse(tc.args, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v (CLI_TEST_N=%s): err %v, want %q", tc.args, env, err, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	var help bytes.Buffer
	var n int
	f := New("cmd", "usage: cmd\n", &help)
	f.Int(&n, "n", "CLI_TEST_N", 5, "count", Min(1))
	if err := f.Parse([]string{"-h"}, false); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	if want := "usage: cmd\n  -n int\n    \tcount [CLI_TEST_N] (default 5)\n"; help.String() != want {
		t.Fatalf("help %q, want %q", help.String(), want)
	}
}

func TestRangeOr(t *testing.T) {
	r := Port().Or("a port 1-65535, or -1 for any free port", -1)
	for v, ok := range map[int]bool{-1: true, 0: false, 1: true, 65535: true, 65536: false, -2: false} {
		if err := r.check(v); (err == nil) != ok {
			t.Errorf("port %d: err %v", v, err)
		}
	}
	if err := Between(0.0, 1.0).check(1.5); err == nil || err.Error() != "want 0 to 1" {
		t.Errorf("between: %v", err)
	}
}
