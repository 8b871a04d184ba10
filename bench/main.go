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

	"github.com/natter-im/natter/cmd/natter/node"
)

const usage = `usage: natter bench <scenario> [flags]

scenarios:
  relay     1:1 conversations (pairs of SDK clients): delivered msg/s and send->deliver latency
  fanout    one sender into a group of --members online members spread over --edges edges
  persist   sustained persisted msgs/s with the PERSIST consumer backlog sampled every second;
            flat out, also the role alone (PERSIST paused while the sends build a backlog, then drained)
  history   newest-50 page latency with --history-sizes messages stored in the stream
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
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "natter bench: %v\n", err)
		return 2
	}
	cfg.childPrefix = childPrefix(args)
	cfg.args = args
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

func parse(args []string, stderr io.Writer) (Config, error) {
	var c Config
	c.stderr = stderr
	fs := flag.NewFlagSet("natter bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nflags:\n")
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return c, flag.ErrHelp
		}
		fs.Usage()
		return c, errors.New("a scenario is required")
	}
	c.Scenario = args[0]
	if c.Scenario == "help" {
		fs.Usage()
		return c, flag.ErrHelp
	}
	if !slices.Contains(scenarios, c.Scenario) {
		return c, fmt.Errorf("unknown scenario %q (known: %s)", c.Scenario, strings.Join(scenarios, ", "))
	}
	fs.Func("url", "edge WebSocket URL of a running natter (repeat for several edges); default: in-process natter dev", func(s string) error {
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
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 signing key of the edges (with --url); prefer the environment or --jwt-secret-file")
	var secretFile string
	fs.StringVar(&secretFile, "jwt-secret-file", "", "file holding the HS256 signing key of the edges (with --url)")
	fs.StringVar(&c.JWTKeyID, "jwt-kid", "default", "key id (kid) of --jwt-secret")
	fs.StringVar(&c.JWTAudience, "jwt-aud", "", "aud claim of minted tokens")
	fs.StringVar(&c.JWTIssuer, "jwt-iss", "", "iss claim of minted tokens")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS URL of the running natter (with --url): PERSIST backlog, history fill, JetStream baseline")
	fs.StringVar(&c.MongoURI, "mongo-uri", "", "MongoDB URI of the running natter (with --url): InsertMany baseline")
	fs.Func("edge-pid", "pids of the server processes to measure with --url (CPU; idle: RSS of the first), comma-separated or repeated; default: the processes of this machine listening on the --url, --nats-url and --mongo-uri ports", func(s string) error {
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
	fs.Func("roles", "worker roles of the in-process natter dev, comma-separated (default all: "+strings.Join(node.AllRoles, ",")+"); relay, fanout, persist and idle", func(s string) error {
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
	fs.IntVar(&c.Conns, "conns", 0, "connections (default per scenario: relay 1000, persist 200, idle and storm 10000)")
	fs.Float64Var(&c.Rate, "rate", 0, "offered load in msg/s, open loop; 0 = closed loop, flat out")
	fs.DurationVar(&c.Duration, "duration", 0, "sending window (default 10s; persist 20s)")
	fs.IntVar(&c.Size, "size", 128, "message body bytes")
	fs.IntVar(&c.Window, "window", 0, "sends in flight per sender in a closed loop (default 1; fanout 16)")
	fs.IntVar(&c.RawBatch, "raw-batch", 128, "raw NATS baselines: messages between flushes in a closed loop")
	fs.Func("source-addrs", "local source addresses to spread connections over: a range 127.0.0.2-127.0.0.9 or a comma list", func(s string) error {
		a, err := parseAddrs(s)
		c.SourceAddrs = a
		return err
	})
	fs.IntVar(&c.Procs, "procs", 1, "generator child processes (each holds under 19,000 sockets); 0 = generator in this process (with an in-process target its CPU is then not told apart from the server's)")
	fs.IntVar(&c.Edges, "edges", 0, "edges of the in-process natter (default 1; fanout 2)")
	fs.IntVar(&c.Members, "members", 1000, "fanout group size")
	fs.DurationVar(&c.Hold, "hold", 20*time.Second, "idle: how long connections are held")
	fs.Func("history-sizes", "history: stored messages to measure at (default 10000,1000000)", func(s string) error {
		v, err := parseCounts(s)
		c.HistorySizes = v
		return err
	})
	fs.IntVar(&c.HistoryConvs, "history-convs", 100, "history: conversations the fill spreads over, round robin")
	fs.IntVar(&c.HistoryReads, "history-reads", 2000, "history: newest-page reads per size")
	fs.DurationVar(&c.FillTimeout, "fill-timeout", 3*time.Minute, "history: bound on the fill")
	fs.Float64Var(&c.RateFrac, "rate-frac", 0, "persist: measure the flat-out rate first, then run at this fraction of it (soak: 0.8)")
	fs.DurationVar(&c.Calibrate, "calibrate", 15*time.Second, "persist: window of the flat-out measurement of --rate-frac")
	fs.BoolVar(&c.NoBaseline, "no-baseline", false, "skip the raw baselines")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "bound on the wait for deliveries after the window")
	fs.IntVar(&c.DialConc, "dial-conc", 64, "dials in flight per generator")
	fs.DurationVar(&c.PingInterval, "ping", 0, "ping interval of the bench's edges (in-process; storm's edge process) (default 25s)")
	fs.DurationVar(&c.LameDuck, "lame-duck", 0, "lame-duck interval of the bench's edges (in-process; storm's edge process) (default 5s)")
	fs.StringVar(&c.StormMode, "storm-mode", StormKill, "storm: how the edge goes down: kill (SIGKILL) or graceful (SIGTERM: lame duck, then drain)")
	fs.StringVar(&c.NatterBin, "natter-bin", "", "storm: natter binary whose 'natter edge' is the edge under test (default: this executable)")
	fs.StringVar(&c.DataDir, "data", "", "parent of the in-process natter's temporary data dir (default: system temp)")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to this file")
	fs.BoolVar(&c.Markdown, "markdown", false, "print the final table as markdown")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of this process (the in-process server: edge, workers, NATS, store)")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile of this process at the end")
	fs.StringVar(&c.GenCPUProfile, "gen-cpuprofile", "", "write a CPU profile of each generator child (--procs) from go to its result, to FILE.<n>")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress line")
	fs.BoolVar(&c.Verbose, "verbose", false, "log the in-process natter's warnings")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [" + envName(f.Name) + "]" })
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := envDefaults(fs); err != nil {
		return c, err
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return c, fmt.Errorf("--jwt-secret-file: %w", err)
		}
		c.JWTSecret = strings.TrimSpace(string(b))
	}
	switch {
	case c.Conns < 0, c.Rate < 0, c.Procs < 0, c.Size < 0, c.Window < 0:
		return c, errors.New("--conns, --rate, --procs, --size and --window must not be negative")
	case len(c.URLs) > 0 && c.JWTSecret == "":
		return c, errors.New("--jwt-secret is required with --url")
	case c.RateFrac < 0 || c.RateFrac > 1:
		return c, errors.New("--rate-frac must be in 0..1")
	case c.Scenario == "persist" && len(c.Roles) > 0 && !slices.Contains(c.Roles, node.RolePersist):
		return c, fmt.Errorf("--roles %s: persist measures the %s role; include it", strings.Join(c.Roles, ","), node.RolePersist)
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

// envDefaults sets every flag not given on the command line from its
// NATTER_BENCH_* variable when that is set: the flag wins, then the
// environment, then the default.
func envDefaults(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if err != nil || given[f.Name] || !ok || v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("--%s (%s): %v", f.Name, envName(f.Name), serr)
		}
	})
	return err
}

// runner runs scenarios of one invocation.
type runner struct {
	cfg     Config
	stdout  io.Writer
	stderr  io.Writer
	prefix  string // makes user ids unique per run
	genProf int    // generator profiles handed out (--gen-cpuprofile)
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
