package gctune

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"
)

// restore puts the test process's collector back as it was.
func restore(t *testing.T) {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	l := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(p); debug.SetMemoryLimit(l) })
}

func noEnv(string) string { return "" }

func inForce() (int, int64) {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

func TestApply(t *testing.T) {
	restore(t)
	a := Apply(Config{Percent: 173, MemoryLimit: 300 << 20}, noEnv)
	if p, l := inForce(); p != 173 || l != 300<<20 {
		t.Fatalf("in force: percent %d, limit %d; want 173, %d", p, l, 300<<20)
	}
	if a.Percent != 173 || a.MemoryLimit != 300<<20 || len(a.FromGo) != 0 {
		t.Fatalf("Apply returned %+v", a)
	}
	Apply(Config{Percent: -1}, noEnv) // off, and no limit
	if p, l := inForce(); p != -1 || l != math.MaxInt64 {
		t.Fatalf("in force: percent %d, limit %d; want -1 (off), none", p, l)
	}
}

func TestApplyDefault(t *testing.T) {
	restore(t)
	debug.SetGCPercent(7)
	debug.SetMemoryLimit(1 << 20)
	Apply(Default(), noEnv)
	p, l := inForce()
	want := int64(DefaultMemoryLimit)
	if want == 0 {
		want = math.MaxInt64
	}
	if p != DefaultPercent || l != want {
		t.Fatalf("in force: percent %d, limit %d; want the defaults %d, %d", p, l, DefaultPercent, want)
	}
}

// Go's own variables win: what the runtime read from GOGC and GOMEMLIMIT
// at start stays in force.
func TestGoEnvironmentWins(t *testing.T) {
	restore(t)
	debug.SetGCPercent(77) // as GOGC=77 at start would
	debug.SetMemoryLimit(200 << 20)
	env := map[string]string{"GOGC": "77", "GOMEMLIMIT": "200MiB"}
	a := Apply(Config{Percent: 400, MemoryLimit: 1 << 30}, func(k string) string { return env[k] })
	if p, l := inForce(); p != 77 || l != 200<<20 {
		t.Fatalf("in force: percent %d, limit %d; want GOGC's 77 and GOMEMLIMIT's %d", p, l, 200<<20)
	}
	if a.Percent != 77 || a.MemoryLimit != 200<<20 || len(a.FromGo) != 2 {
		t.Fatalf("Apply returned %+v", a)
	}
	// Only one of them set: the other is natter's.
	env = map[string]string{"GOGC": "77"}
	Apply(Config{Percent: 400, MemoryLimit: 1 << 30}, func(k string) string { return env[k] })
	if p, l := inForce(); p != 77 || l != 1<<30 {
		t.Fatalf("in force: percent %d, limit %d; want GOGC's 77 and natter's %d", p, l, 1<<30)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{{"100", 100}, {" 400 ", 400}, {"off", -1}, {"OFF", -1}} {
		if got, err := ParsePercent(c.in); err != nil || got != c.want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "0", "-5", "1.5", "x", "100%"} {
		if _, err := ParsePercent(in); !errors.Is(err, ErrBadPercent) {
			t.Errorf("ParsePercent(%q) = %v; want ErrBadPercent", in, err)
		}
	}
	for _, c := range []struct {
		in   string
		want int64
	}{{"0", 0}, {"none", 0}, {"1048576", 1 << 20}, {"512B", 512}, {"64KiB", 64 << 10}, {"768MiB", 768 << 20}, {"2GiB", 2 << 30}, {"1TiB", 1 << 40}} {
		if got, err := ParseMemory(c.in); err != nil || got != c.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if c.want != 0 {
			if back, err := ParseMemory(FormatMemory(c.want)); err != nil || back != c.want {
				t.Errorf("ParseMemory(FormatMemory(%d) = %q) = %d, %v", c.want, FormatMemory(c.want), back, err)
			}
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "12MB", "GiB", "99999999999TiB"} {
		if _, err := ParseMemory(in); !errors.Is(err, ErrBadMemory) {
			t.Errorf("ParseMemory(%q) = %v; want ErrBadMemory", in, err)
		}
	}
	if FormatMemory(0) != "none" || FormatMemory(math.MaxInt64) != "none" || FormatPercent(-1) != "off" {
		t.Error("FormatMemory(0), FormatMemory(MaxInt64) or FormatPercent(-1) is not none/off")
	}
}
