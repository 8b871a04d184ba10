package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPUProfile starts a pprof CPU profile of this process into path
// and returns what stops it. A failure is reported on stderr: the run goes
// on without the profile.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "bench: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "bench: cpu profile %s: %v\n", path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "bench: cpu profile %s: %v\n", path, err)
		}
	}
}

// startTrace starts the execution trace of the window label (--trace) and
// returns what stops it; without --trace it does nothing. A failure is
// reported on stderr: the run goes on without the trace.
func (r *runner) startTrace(label string) (stop func()) {
	if r.cfg.Trace == "" {
		return func() {}
	}
	path := r.cfg.Trace
	if r.traces > 0 {
		path = fmt.Sprintf("%s.%d", path, r.traces)
	}
	r.traces++
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(r.stderr, "bench: trace: %v\n", err)
		return func() {}
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		fmt.Fprintf(r.stderr, "bench: trace %s: %v\n", path, err)
		return func() {}
	}
	fmt.Fprintf(r.stderr, "bench: %s: execution trace of this process to %s\n", label, path)
	return func() {
		trace.Stop()
		if err := f.Close(); err != nil {
			fmt.Fprintf(r.stderr, "bench: trace %s: %v\n", path, err)
		}
	}
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
const clockTick = 100

// pidCPU is the CPU time (user + system) of process pid from
// /proc/<pid>/stat, at 10 ms resolution.
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: cpu of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: cpu of pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: cpu of pid %d: malformed stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: cpu of pid %d: malformed stat", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// cpuOf is the CPU time of pid, or of this process when pid is 0.
func cpuOf(pid int) (time.Duration, error) {
	if pid == 0 || pid == os.Getpid() {
		return selfCPU(), nil
	}
	return pidCPU(pid)
}

// rssOf is the resident set size of pid (0: this process) in bytes, from
// VmRSS in /proc/<pid>/status.
func rssOf(pid int) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("bench: rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			kb, err := strconv.ParseInt(fs[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("bench: rss: no VmRSS in %s", path)
}

// Machine describes where a run was made.
type Machine struct {
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu,omitempty"`
	MemoryGiB int    `json:"memory_gib,omitempty"`
	Go        string `json:"go"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	OpenFiles uint64 `json:"open_files_limit,omitempty"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					kb, _ := strconv.ParseInt(fs[0], 10, 64)
					m.MemoryGiB = int((kb + 1<<19) >> 20)
				}
			}
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.OpenFiles = rl.Cur
	}
	return m
}

// raiseFileLimit lifts the soft open-file limit to the hard one.
func raiseFileLimit() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
