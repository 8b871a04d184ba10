package gctune

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// Defaults of Config.
const (
	// DefaultPercent is Go's own default.
	DefaultPercent = 100
	// DefaultMemoryLimit is none.
	DefaultMemoryLimit = 0
)

// Config is the collector's setting.
type Config struct {
	// Percent is the GC percent: a collection starts when the heap has
	// grown this many percent beyond the live heap of the last one (Go's
	// GOGC; -1 = off). Default DefaultPercent.
	Percent int
	// MemoryLimit is a soft limit of the process's Go memory in bytes: near
	// it the collector runs more often than Percent says (Go's GOMEMLIMIT).
	// 0 = none. Default DefaultMemoryLimit.
	MemoryLimit int64
}

// Default returns the default setting.
func Default() Config { return Config{Percent: DefaultPercent, MemoryLimit: DefaultMemoryLimit} }

// Applied is what Apply set, for the process's log.
type Applied struct {
	Percent     int   // the GC percent now in force
	MemoryLimit int64 // the limit now in force (math.MaxInt64 = none)
	// FromGo names Go's variables found in the environment, whose values
	// were left in force ("GOGC", "GOMEMLIMIT").
	FromGo []string
}

// Apply sets the collector to c, except for what GOGC or GOMEMLIMIT in the
// environment (read by getenv) already set: those stay. It returns what is
// now in force.
func Apply(c Config, getenv func(string) string) Applied {
	var a Applied
	if getenv("GOGC") != "" {
		a.FromGo = append(a.FromGo, "GOGC")
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		a.Percent = p
	} else {
		debug.SetGCPercent(c.Percent)
		a.Percent = c.Percent
	}
	if getenv("GOMEMLIMIT") != "" {
		a.FromGo = append(a.FromGo, "GOMEMLIMIT")
		a.MemoryLimit = debug.SetMemoryLimit(-1)
	} else {
		lim := c.MemoryLimit
		if lim <= 0 {
			lim = math.MaxInt64
		}
		debug.SetMemoryLimit(lim)
		a.MemoryLimit = lim
	}
	return a
}

// ParsePercent parses a GC percent: an integer of 1 or more, or "off".
func ParsePercent(s string) (int, error) {
	if strings.EqualFold(strings.TrimSpace(s), "off") {
		return -1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: %q: want a whole number of 1 or more (percent), or off", ErrBadPercent, s)
	}
	return n, nil
}

// FormatPercent writes a GC percent as ParsePercent reads it.
func FormatPercent(p int) string {
	if p < 0 {
		return "off"
	}
	return strconv.Itoa(p)
}

// memUnits are the suffixes of ParseMemory, longest first.
var memUnits = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1},
}

// ParseMemory parses a memory limit as Go's GOMEMLIMIT writes it: a whole
// number of bytes with an optional suffix B, KiB, MiB, GiB or TiB
// ("768MiB"); 0 or "none" = none (returned as 0).
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "none") {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range memUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w: %q: want bytes with an optional suffix KiB, MiB, GiB or TiB (e.g. 768MiB), or none", ErrBadMemory, s)
	}
	return n * mult, nil
}

// FormatMemory writes a limit as ParseMemory reads it ("none" for 0 or
// math.MaxInt64).
func FormatMemory(n int64) string {
	if n <= 0 || n == math.MaxInt64 {
		return "none"
	}
	for _, u := range memUnits {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
