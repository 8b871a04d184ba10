package bench_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natter-im/natter/bench"
)

// devProc is a natter dev started as its own process.
type devProc struct {
	cmd   *exec.Cmd
	ready map[string]string // key=value pairs of its "natter ready" line
}

var readyKV = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// startDev starts natter dev from the built binary on free ports and waits
// for its ready line; it is stopped (SIGTERM) when the test ends.
func startDev(t *testing.T, extra ...string) *devProc {
	t.Helper()
	args := append([]string{"dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", "-1"}, extra...)
	p := &devProc{cmd: exec.Command(natterBin, args...)}
	pr, pw := io.Pipe()
	var logMu sync.Mutex
	var log strings.Builder
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
	})
	readyCh := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			log.WriteString(line + "\n")
			logMu.Unlock()
			if strings.Contains(line, `msg="natter ready"`) {
				m := map[string]string{}
				for _, g := range readyKV.FindAllStringSubmatch(line, -1) {
					m[g[1]] = strings.Trim(g[2], `"`)
				}
				readyCh <- m
			}
		}
	}()
	dump := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	select {
	case p.ready = <-readyCh:
	case <-exited:
		t.Fatalf("natter dev exited before ready:\n%s", dump())
	case <-time.After(120 * time.Second):
		t.Fatalf("natter dev not ready after 120s:\n%s", dump())
	}
	return p
}

// peerWatch records, from /proc/net/tcp, the local addresses of the
// established sockets connected to one address (here: the edge), polled
// until stopped: which source addresses the generator's sockets really
// used, as the kernel reports them.
type peerWatch struct {
	stop func() map[netip.AddrPort]bool
}

func watchPeers(t *testing.T, remote netip.AddrPort) *peerWatch {
	t.Helper()
	seen := map[netip.AddrPort]bool{}
	done, stopped := make(chan struct{}), make(chan struct{})
	poll := func() {
		for _, s := range readTCP(t) {
			if s.remote == remote && s.state == 1 { // ESTABLISHED
				seen[s.local] = true
			}
		}
	}
	go func() {
		defer close(stopped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				poll()
			}
		}
	}()
	return &peerWatch{stop: func() map[netip.AddrPort]bool { close(done); <-stopped; return seen }}
}

type tcpLine struct {
	local, remote netip.AddrPort
	state         int64
}

// readTCP parses /proc/net/tcp (IPv4 sockets).
func readTCP(t *testing.T) []tcpLine {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Error(err)
		return nil
	}
	parse := func(s string) netip.AddrPort {
		h, p, _ := strings.Cut(s, ":")
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != 4 {
			return netip.AddrPort{}
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(raw))
		port, _ := strconv.ParseUint(p, 16, 16)
		return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port))
	}
	var out []tcpLine
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		st, _ := strconv.ParseInt(f[3], 16, 32)
		out = append(out, tcpLine{local: parse(f[1]), remote: parse(f[2]), state: st})
	}
	return out
}

// TestRemoteRelay drives a natter dev the bench did not start, as an
// operator drives a deployment: the edge by URL, its signing key (from the
// environment), a connection count, rate, duration, size, and two source
// addresses. It checks the figures in the JSON report, that the sockets
// came from those addresses (/proc/net/tcp), that the server's CPU was read
// from the dev process (found listening on the edge port), and the
// progress line.
func TestRemoteRelay(t *testing.T) {
	const secret = "bench-remote-test-secret-0123456789abcdef"
	dev := startDev(t, "--jwt-secret", secret, "--rate", "1000", "--burst", "1000")
	edge, err := netip.ParseAddrPort(dev.ready["http"])
	if err != nil {
		t.Fatalf("ready line %v: %v", dev.ready, err)
	}
	t.Setenv("NATTER_BENCH_JWT_SECRET", secret)
	out := filepath.Join(t.TempDir(), "remote.json")
	args := []string{"relay", "--url", "ws://" + edge.String() + "/v1/ws", "--nats-url", dev.ready["nats"],
		"--conns", "4", "--rate", "40", "--duration", "3s", "--size", "200", "--source-addrs", "127.0.0.2,127.0.0.3",
		"--procs", "1", "--no-baseline", "--json", out}
	watch := watchPeers(t, edge)
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := bench.Main(ctx, args, &stdout, &stderr)
	peers := watch.stop()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results", len(rep.Results))
	}
	r := rep.Results[0]
	t.Logf("sent %d acked %d delivered %d lost %d errors %d, %.1f msg/s, p99 %v ms; cpu %+v; source addresses %v",
		r.Sent, r.Acked, r.Delivered, r.Lost, r.Errors, r.Throughput, r.Latency.P99, *r.CPU, r.SourceAddrs)
	if r.Target != "ws://"+edge.String()+"/v1/ws" || r.Connected != 4 || r.Size != 200 || r.Rate != 40 {
		t.Errorf("target %q connected %d size %d rate %v", r.Target, r.Connected, r.Size, r.Rate)
	}
	if r.Delivered == 0 || r.Lost != 0 || r.Acked != r.Delivered || r.Errors != 0 || r.Sent < 100 || r.Sent > 140 {
		t.Errorf("sent %d acked %d delivered %d lost %d errors %d (40 msg/s for 3 s); notes %v", r.Sent, r.Acked, r.Delivered, r.Lost, r.Errors, r.Notes)
	}
	if r.Latency == nil || r.Latency.Count != r.Delivered || r.PersistPending < 0 {
		t.Errorf("latency %+v, PERSIST backlog %d", r.Latency, r.PersistPending)
	}
	// The generator's own record: every dial from one of the two.
	if len(r.SourceAddrs) != 2 || r.SourceAddrs["127.0.0.2"] < 2 || r.SourceAddrs["127.0.0.3"] < 2 {
		t.Errorf("dials by source address %v, want 127.0.0.2 and 127.0.0.3, 2 each", r.SourceAddrs)
	}
	// The kernel's: the sockets connected to the edge.
	var ips []string
	for p := range peers {
		if a := p.Addr().String(); !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
	}
	slices.Sort(ips)
	if len(peers) < 4 || !slices.Equal(ips, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("sockets to the edge seen in /proc/net/tcp: %v (from %v), want 4 or more from 127.0.0.2 and 127.0.0.3", peers, ips)
	}
	checkSplitCPU(t, r)
	if r.CPU.ServerRuntime != nil {
		t.Errorf("Go runtime figures %+v for a running target: they are this process's, not the server's", r.CPU.ServerRuntime)
	}
	if !slices.Equal(r.CPU.ServerPIDs, []int{dev.cmd.Process.Pid}) || r.CPU.Per != "msg" || r.CPU.Count != float64(r.Delivered) {
		t.Errorf("cpu measured pids %v per %q over %v, want natter dev's pid %d per delivered message", r.CPU.ServerPIDs, r.CPU.Per, r.CPU.Count, dev.cmd.Process.Pid)
	}

	progress := regexp.MustCompile(`\[relay at 40 msg/s +\d+s\] connected 4  sent \d+  delivered \d+  errors 0  rate \d+/s sent, \d+/s delivered`)
	if n := len(progress.FindAllString(stderr.String(), -1)); n < 2 {
		t.Errorf("%d progress lines, want one a second:\n%s", n, stderr.String())
	}
	for _, want := range []string{"srv us/msg", "gen us/msg", "lost", "dials by source address: 127.0.0.2 x", "server_pids"} {
		if !strings.Contains(stdout.String()+string(b), want) {
			t.Errorf("table or JSON without %q:\n%s", want, stdout.String())
		}
	}
}

// TestConfigDocCoversBenchFlags keeps docs/config.md in step with the bench
// flags and their environment variables.
func TestConfigDocCoversBenchFlags(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	var help strings.Builder
	if code := bench.Main(context.Background(), []string{"relay", "--help"}, &help, io.Discard); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	envs := regexp.MustCompile(`\[(NATTER_BENCH_[A-Z_]+)\]`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 10 || len(envs) != len(flags) {
		t.Fatalf("%d flags, %d variables in:\n%s", len(flags), len(envs), help.String())
	}
	for _, f := range flags {
		if !strings.Contains(string(doc), "`--"+f[1]+"`") {
			t.Errorf("docs/config.md does not document natter bench --%s", f[1])
		}
	}
	for _, e := range envs {
		if !strings.Contains(string(doc), e[1]) {
			t.Errorf("docs/config.md does not document %s", e[1])
		}
	}
}
