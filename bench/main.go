package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/gctune"
	"github.com/natter-im/natter/internal/node"
)

const usage = `usage: natter bench <scenario> [flags]

scenarios:
  relay     1:1 conversations (pairs of SDK clients): delivered msg/s and send->deliver latency;
            server CPU per message in the window and including the PERSIST backlog's drain after it
  fanout    one sender into a group of --members online members spread over --edges edges
  persist   sustained persisted msgs/s with the PERSIST consumer backlog sampled every second;
            flat out, also the role alone (PERSIST paused while the sends build a backlog, then drained)
  history   newest-50 page latency with --history-sizes messages stored in the stream;
            --history-mode archive: 200-message pages older than the hot tier, sizes stored in MongoDB
  idle      --conns idle connections held for --hold: edge RSS and CPU per connection
  storm     --conns clients, the edge (its own process) killed and restarted: time until all resumed, messages lost
  memory    the relay at a steady --rate (default 1,500 msg/s, 200 conns, 10m): the server's RSS every 10 s,
            then (in-process) at rest after a restart on the same data
  suite     a quick run of every scenario with small sizes (writes --json)

Without --url the bench starts natter dev in-process (temporary data dir, free ports).
With --url it drives running edges: give their signing key (--jwt-secret-file or
NATTER_BENCH_JWT_SECRET) and, for the backlog, history and baselines, --nats-url
and --mongo-uri. Every flag is also read from the NATTER_BENCH_* variable shown.
`

// Main runs "natter bench" with args (the words after "bench") and returns
// the exit code: 0 success, 1 failure, 2 bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == childArg {
		return runChild(ctx, os.Stdin, stdout)
	}
	cfg, err := parseTo(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "natter bench: %v\n", err)
		return 2
	}
	cfg.childPrefix = childPrefix(args)
	cfg.args = args
	gctune.Apply(cfg.GC, os.Getenv)
	if _, err := Run(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "natter bench: %v\n", err)
		return 1
	}
	return 0
}

// childPrefix is what to put before childArg to reach Main again from the
// current binary: the words of os.Args between the program and args.
func childPrefix(args []string) []string {
	if len(os.Args) > len(args) && slices.Equal(os.Args[len(os.Args)-len(args):], args) {
		return append([]string(nil), os.Args[1:len(os.Args)-len(args)]...)
	}
	return nil
}

var scenarios = []string{"relay", "fanout", "persist", "history", "idle", "storm", "memory", "suite"}

func parse(args []string, stderr io.Writer) (Config, error) { return parseTo(args, stderr, stderr) }

// parseTo parses the words after "natter bench": --help writes the usage to
// help, progress and warnings of the run go to stderr.
func parseTo(args []string, help, stderr io.Writer) (Config, error) {
	var c Config
	c.stderr = stderr
	fs := cli.New("natter bench", usage+"\nflags:\n", help)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage(help)
			return c, flag.ErrHelp
		}
		fs.Usage(stderr)
		return c, errors.New("a scenario is required")
	}
	c.Scenario = args[0]
	if c.Scenario == "help" {
		fs.Usage(help)
		return c, flag.ErrHelp
	}
	if !slices.Contains(scenarios, c.Scenario) {
		return c, fmt.Errorf("unknown scenario %q (known: %s)", c.Scenario, strings.Join(scenarios, ", "))
	}
	fs.Func("url", envName("url"), "edge WebSocket URL of a running natter (repeat for several edges); default: in-process natter dev", func(s string) error {
		for _, u := range strings.Split(s, ",") {
			if u = strings.TrimSpace(u); u != "" {
				if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
					return fmt.Errorf("%q: want ws:// or wss://", u)
				}
				c.URLs = append(c.URLs, u)
			}
		}
		return nil
	})
	str := func(p *string, name, def, usage string) { fs.String(p, name, envName(name), def, usage) }
	boolean := func(p *bool, name, usage string) { fs.Bool(p, name, envName(name), false, usage) }
	integer := func(p *int, name string, def int, usage string, r cli.Range[int]) {
		fs.Int(p, name, envName(name), def, usage, r)
	}
	duration := func(p *time.Duration, name string, def time.Duration, usage string, r cli.Range[time.Duration]) {
		fs.Duration(p, name, envName(name), def, usage, r)
	}
	positive := cli.Positive[time.Duration]()
	// 0 is the scenario's default where a flag says so, else not a value.
	perScenario := cli.Min[time.Duration](0)
	str(&c.JWTSecret, "jwt-secret", "", "HS256 signing key of the edges (with --url); prefer the environment or --jwt-secret-file")
	var secretFile string
	str(&secretFile, "jwt-secret-file", "", "file holding the HS256 signing key of the edges (with --url)")
	str(&c.JWTKeyID, "jwt-kid", "default", "key id (kid) of --jwt-secret")
	str(&c.JWTAudience, "jwt-aud", "", "aud claim of minted tokens")
	str(&c.JWTIssuer, "jwt-iss", "", "iss claim of minted tokens")
	str(&c.NATSURL, "nats-url", "", "NATS URL of the running natter (with --url): PERSIST backlog, history fill, JetStream baseline")
	str(&c.MongoURI, "mongo-uri", "", "MongoDB URI of the running natter (with --url): InsertMany baseline, archive history fill")
	fs.Func("edge-pid", envName("edge-pid"), "pids of the server processes to measure with --url (CPU; idle: RSS of the first), comma-separated or repeated; default: the processes of this machine listening on the --url, --nats-url and --mongo-uri ports", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			p, err := strconv.Atoi(f)
			if err != nil || p <= 0 {
				return fmt.Errorf("%q: want a pid", f)
			}
			c.EdgePIDs = append(c.EdgePIDs, p)
		}
		return nil
	})
	fs.Func("roles", envName("roles"), "worker roles of the in-process natter dev, comma-separated (default all: "+strings.Join(node.AllRoles, ",")+"); relay, fanout, persist and idle", func(s string) error {
		c.Roles = nil
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if !slices.Contains(node.AllRoles, f) {
				return fmt.Errorf("%q: want roles among %s", f, strings.Join(node.AllRoles, ","))
			}
			c.Roles = append(c.Roles, f)
		}
		if len(c.Roles) == 0 {
			return errors.New("want at least one role")
		}
		return nil
	})
	integer(&c.Conns, "conns", 0, "connections (0 = per scenario: relay 1000, persist 200, idle and storm 10000)", cli.Min(0))
	fs.Float(&c.Rate, "rate", envName("rate"), 0, "offered load in msg/s, open loop; 0 = closed loop, flat out", cli.Min(0.0))
	duration(&c.Duration, "duration", 0, "sending window (0 = per scenario: 10s; persist 20s)", perScenario)
	integer(&c.Size, "size", 128, "message body bytes", cli.Min(1))
	integer(&c.Window, "window", 0, "sends in flight per sender in a closed loop (0 = per scenario: relay 8, in batches with client.SendAll; fanout 16; else 1)", cli.Min(0))
	integer(&c.RawBatch, "raw-batch", 128, "raw NATS baselines: messages between flushes in a closed loop", cli.Min(1))
	fs.Func("source-addrs", envName("source-addrs"), "local source addresses to spread connections over: a range 127.0.0.2-127.0.0.9 or a comma list", func(s string) error {
		a, err := parseAddrs(s)
		c.SourceAddrs = a
		return err
	})
	integer(&c.Procs, "procs", 1, "generator child processes (each holds under 19,000 sockets); 0 = generator in this process (with an in-process target its CPU is then not told apart from the server's)", cli.Min(0))
	integer(&c.Edges, "edges", 0, "edges of the in-process natter (0 = per scenario: 1; fanout 2)", cli.Min(0))
	integer(&c.Members, "members", 1000, "fanout group size", cli.Min(1))
	duration(&c.Hold, "hold", 20*time.Second, "idle: how long connections are held", positive)
	fs.Func("history-sizes", envName("history-sizes"), "history: stored messages to measure at (default 10000,1000000)", func(s string) error {
		v, err := parseCounts(s)
		c.HistorySizes = v
		return err
	})
	integer(&c.HistoryConvs, "history-convs", 100, "history: conversations the fill spreads over, round robin", cli.Min(1))
	integer(&c.HistoryReads, "history-reads", 2000, "history: newest-page reads per size", cli.Min(1))
	str(&c.HistoryMode, "history-mode", HistoryNewest, "history: newest (newest-50 pages from the hot tier) or archive (200-message history and sync pages older than the hot tier, read from the archive; sizes are messages in MongoDB)")
	duration(&c.FillTimeout, "fill-timeout", 3*time.Minute, "history: bound on the fill", positive)
	fs.Float(&c.RateFrac, "rate-frac", envName("rate-frac"), 0, "persist: measure the flat-out rate first, then run at this fraction of it (soak: 0.8); 0 = no calibration", cli.Between(0.0, 1.0))
	duration(&c.Calibrate, "calibrate", 15*time.Second, "persist: window of the flat-out measurement of --rate-frac", positive)
	boolean(&c.NoBaseline, "no-baseline", "skip the raw baselines")
	duration(&c.DrainTimeout, "drain-timeout", 30*time.Second, "bound on the wait for deliveries after the window", positive)
	integer(&c.DialConc, "dial-conc", 64, "dials in flight per generator", cli.Min(1))
	duration(&c.PingInterval, "ping", 0, "ping interval of the bench's edges (in-process; storm's edge process) (0 = the edge default, 25s)", perScenario)
	duration(&c.LameDuck, "lame-duck", 0, "lame-duck interval of the bench's edges (in-process; storm's edge process) (0 = the edge default, 5s)", perScenario)
	str(&c.StormMode, "storm-mode", StormKill, "storm: how the edge goes down: kill (SIGKILL) or graceful (SIGTERM: lame duck, then drain)")
	integer(&c.StormPresence, "storm-presence", 0, "storm: each client watches the presence of this many others (groups of n+1 clients); 0 = off", cli.Between(0, 100))
	str(&c.NatterBin, "natter-bin", "", "storm: natter binary whose 'natter edge' is the edge under test (default: this executable)")
	str(&c.DataDir, "data", "", "parent of the in-process natter's temporary data dir (default: system temp)")
	str(&c.JSON, "json", "", "write the report as JSON to this file")
	boolean(&c.Markdown, "markdown", "print the final table as markdown")
	str(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of this process (the in-process server: edge, workers, NATS, store)")
	str(&c.MemProfile, "memprofile", "", "write a heap profile of this process at the end")
	str(&c.Trace, "trace", "", "write a Go execution trace (go tool trace) of this process over each measured window, to FILE (FILE.<n> from the second window on)")
	str(&c.GenCPUProfile, "gen-cpuprofile", "", "write a CPU profile of each generator child (--procs) from go to its result, to FILE.<n>")
	c.GC = gctune.Default()
	fs.Func("gc-percent", envName("gc-percent"), "GC percent of this process, the in-process server, as natter dev's --gc-percent (default "+gctune.FormatPercent(gctune.DefaultPercent)+"; the generator children keep Go's); GOGC in the environment wins", func(s string) error {
		var err error
		c.GC.Percent, err = gctune.ParsePercent(s)
		return err
	})
	fs.Func("memory-limit", envName("memory-limit"), "soft memory limit of this process, the in-process server, as natter dev's --memory-limit (default "+gctune.FormatMemory(gctune.DefaultMemoryLimit)+"); GOMEMLIMIT in the environment wins", func(s string) error {
		var err error
		c.GC.MemoryLimit, err = gctune.ParseMemory(s)
		return err
	})
	boolean(&c.Quiet, "quiet", "no progress line")
	boolean(&c.Verbose, "verbose", "log the in-process natter's warnings")
	if err := fs.Parse(args[1:], false); err != nil {
		return c, err
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return c, fmt.Errorf("%s: %w", fs.Setting("jwt-secret-file"), err)
		}
		c.JWTSecret = strings.TrimSpace(string(b))
	}
	switch {
	case len(c.URLs) > 0 && c.JWTSecret == "":
		return c, errors.New("--jwt-secret is required with --url")
	case c.Scenario == "persist" && len(c.Roles) > 0 && !slices.Contains(c.Roles, node.RolePersist):
		return c, fmt.Errorf("--roles %s: persist measures the %s role; include it", strings.Join(c.Roles, ","), node.RolePersist)
	case c.HistoryMode != HistoryNewest && c.HistoryMode != HistoryArchive:
		return c, fmt.Errorf("--history-mode %q: want %s or %s", c.HistoryMode, HistoryNewest, HistoryArchive)
	case c.StormMode != StormKill && c.StormMode != StormGraceful:
		return c, fmt.Errorf("--storm-mode %q: want %s or %s", c.StormMode, StormKill, StormGraceful)
	}
	return c, nil
}

// envName is the environment variable of bench flag name:
// NATTER_BENCH_<NAME>.
func envName(name string) string {
	return "NATTER_BENCH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// runner runs scenarios of one invocation.
type runner struct {
	cfg     Config
	stdout  io.Writer
	stderr  io.Writer
	prefix  string // makes user ids unique per run
	genProf int    // generator profiles handed out (--gen-cpuprofile)
	traces  int    // execution traces written (--trace)
}

// Run runs cfg.Scenario, prints the table on stdout, writes cfg.JSON and
// returns the report (with the results measured so far on an error).
func Run(ctx context.Context, cfg Config, stdout io.Writer) (*Report, error) {
	if cfg.stderr == nil {
		cfg.stderr = io.Discard
	}
	cfg = cfg.withDefaults()
	raiseFileLimit()
	var id [3]byte
	_, _ = rand.Read(id[:])
	r := &runner{cfg: cfg, stdout: stdout, stderr: cfg.stderr, prefix: "b" + hex.EncodeToString(id[:])}
	rep := &Report{Machine: machine(), Started: time.Now().UTC().Truncate(time.Second), Command: "natter bench " + cfg.Scenario}
	if cfg.args != nil {
		rep.Command = "natter bench " + strings.Join(cfg.args, " ")
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	var results []*Result
	var err error
	switch cfg.Scenario {
	case "relay":
		results, err = r.relay(ctx)
	case "fanout":
		results, err = r.fanout(ctx)
	case "persist":
		results, err = r.persist(ctx)
	case "history":
		results, err = r.history(ctx)
	case "idle":
		results, err = r.idle(ctx)
	case "storm":
		results, err = r.storm(ctx)
	case "memory":
		results, err = r.memory(ctx)
	case "suite":
		results, rep.Warnings, err = r.suite(ctx)
	default:
		err = fmt.Errorf("unknown scenario %q", cfg.Scenario)
	}
	rep.Results = results
	rep.Seconds = round3(time.Since(t0).Seconds())
	if cfg.MemProfile != "" {
		if f, ferr := os.Create(cfg.MemProfile); ferr == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if len(results) > 0 {
		fmt.Fprintf(stdout, "\nnatter bench %s: %d cores, %s, %s/%s\n\n", cfg.Scenario, rep.Machine.Cores, rep.Machine.Go, rep.Machine.OS, rep.Machine.Arch)
		writeTable(stdout, results, cfg.Markdown)
	}
	if cfg.JSON != "" && len(results) > 0 {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(cfg.JSON, append(b, '\n'), 0o644)
		}
		if jerr != nil {
			return rep, errors.Join(err, fmt.Errorf("json: %w", jerr))
		}
	}
	return rep, err
}
