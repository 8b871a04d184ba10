package bench

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/natter-im/natter/internal/gctune"
)

// Config is one "natter bench" invocation. Zero values take the defaults
// documented per field; scenario defaults apply where a field says so.
type Config struct {
	// Scenario is relay, fanout, persist, history, idle, storm or suite.
	Scenario string

	// URLs are running edges (ws://host:port/v1/ws). Empty means: start an
	// in-process natter dev.
	URLs []string
	// JWTSecret is the edges' HS256 signing key (required with URLs);
	// JWTKeyID its kid (empty means "default", what natter's --jwt-secret
	// uses); JWTAudience and JWTIssuer the aud and iss to put in tokens.
	JWTSecret, JWTKeyID, JWTAudience, JWTIssuer string
	// NATSURL and MongoURI let a run against running edges read the PERSIST
	// backlog, fill history, and measure the JetStream and InsertMany
	// baselines. Empty means those figures are skipped.
	NATSURL, MongoURI string
	// EdgePIDs are processes whose CPU counts as the server's (and whose
	// RSS idle measures: the first) when the target runs elsewhere. Empty
	// means: the processes of this machine listening on the ports of URLs,
	// NATSURL and MongoURI (none found: the server's CPU is not measured).
	// Ignored with an in-process target (this process is the server).
	EdgePIDs []int
	// Roles are the worker roles of the in-process natter dev (empty: all);
	// relay, fanout, persist and idle take them, to see what a role costs
	// the others (persist needs its own role). Ignored with --url.
	Roles []string

	// Conns is the number of connections. Zero means the scenario's
	// default (relay 1,000; persist 200; idle and storm 10,000; fanout: see
	// Members).
	Conns int
	// Rate is the offered load in msg/s (open loop). Zero means a closed
	// loop, flat out.
	Rate float64
	// Duration of the sending window. Zero means 10s (persist 20s).
	Duration time.Duration
	// Size is the message body size in bytes. Zero means 128.
	Size int
	// Window is the number of sends in flight per sender in a closed loop:
	// the relay sends batches of Window messages with client.SendAll (one
	// write each; the next batch once all are acked; 1 is a loop of
	// client.Send), fanout runs Window sending goroutines per sender. Zero
	// means 8 (relay), 16 (fanout), else 1. Raw baselines flush every
	// RawBatch messages instead.
	Window int
	// RawBatch is the number of messages a raw NATS publisher sends between
	// two flushes in a closed loop. Zero means 128.
	RawBatch int
	// SourceAddrs are local source addresses the connections are spread
	// over, round robin (to pass the per-address port limit). Empty means
	// the kernel's choice.
	SourceAddrs []string
	// Procs is the number of generator child processes. Zero means the
	// generator runs in this process (the --procs flag defaults to 1, so
	// that server and generator CPU are measured apart).
	Procs int
	// Edges is the number of edges of an in-process target. Zero means 1
	// (fanout 2).
	Edges int
	// Members is the fanout group size. Zero means 1,000.
	Members int
	// Hold is how long idle holds its connections. Zero means 20s.
	Hold time.Duration
	// HistorySizes are the stream sizes history measures at. Nil means
	// 10,000 and 1,000,000.
	HistorySizes []uint64
	// HistoryConvs is the number of conversations the history fill spreads
	// over, round robin. Zero means 100.
	HistoryConvs int
	// HistoryReads is the number of newest-page reads per size. Zero means
	// 2,000.
	HistoryReads int
	// HistoryMode is what history reads: HistoryNewest (newest-50 pages
	// from the hot tier) or HistoryArchive (200-message pages beyond it).
	// Empty means HistoryNewest.
	HistoryMode string
	// FillTimeout bounds the history fill. Zero means 3m.
	FillTimeout time.Duration
	// RateFrac, when > 0, makes persist first measure its flat-out rate for
	// Calibrate, then run at RateFrac of it (bench:soak uses 0.8).
	RateFrac float64
	// Calibrate is the flat-out measuring window of RateFrac. Zero means
	// 15s.
	Calibrate time.Duration
	// NoBaseline skips the raw baselines.
	NoBaseline bool
	// DrainTimeout bounds the wait for deliveries after the window. Zero
	// means 30s.
	DrainTimeout time.Duration
	// DialConc is how many dials run at once per generator. Zero means 64.
	DialConc int
	// PingInterval and LameDuck configure the edges of an in-process
	// target (and storm's edge process). Zero means the edge defaults (25s,
	// 5s).
	PingInterval, LameDuck time.Duration
	// StormMode is how storm takes its edge down: "kill" (SIGKILL, the
	// default) or "graceful" (SIGTERM: lame duck, then drain). Empty means
	// kill.
	StormMode string
	// NatterBin is the natter binary whose `natter edge` storm runs as the
	// edge under test. Empty means this executable (`natter bench` is a
	// natter subcommand).
	NatterBin string
	// StormPresence puts storm's clients in groups of StormPresence+1, in
	// which every client watches the presence of the others, so presence
	// changes flow through the storm. Zero means off.
	StormPresence int
	// DataDir is where an in-process target keeps its temporary data dir.
	// Empty means the system temp dir.
	DataDir string
	// JSON is a file to write the report to. Empty means none.
	JSON string
	// Markdown prints the final table as markdown.
	Markdown bool
	// CPUProfile and MemProfile write pprof profiles of this process (with
	// an in-process target: the edge, the workers and the embedded servers)
	// over the run.
	CPUProfile, MemProfile string
	// GenCPUProfile makes every generator child (--procs) write a pprof CPU
	// profile of itself from go to its result, to GenCPUProfile.<n> (n
	// counts the children of the invocation from 0, baselines included).
	// Empty means none. With Procs 0 the generator is in this process:
	// CPUProfile covers it.
	GenCPUProfile string
	// Trace writes a Go execution trace (runtime/trace; `go tool trace`) of
	// this process over each measured window (from go to the last result):
	// GC, stop-the-world pauses, scheduler latency and blocking of the
	// in-process server. A scenario with several windows (baselines
	// included) writes the first to Trace, the n-th after it to Trace.<n>.
	// Empty means none.
	Trace string
	// GC is the garbage collector's setting of this process (the
	// in-process server), as natter dev's --gc-percent and --memory-limit:
	// Main parses it (default gctune.Default()) and applies it; Run does
	// not (a test's process keeps its own). The generator children keep
	// Go's.
	GC gctune.Config
	// Quiet turns the progress line off.
	Quiet bool
	// Verbose logs the in-process node's warnings to stderr.
	Verbose bool

	stderr      io.Writer
	childPrefix []string
	args        []string // as given to Main, for the report
}

func (c Config) withDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
		switch c.Scenario {
		case "persist":
			c.Duration = 20 * time.Second
		case "memory":
			c.Duration = 10 * time.Minute
		}
	}
	if c.Size <= 0 {
		c.Size = 128
	}
	if c.Window <= 0 {
		switch c.Scenario {
		case "relay":
			c.Window = 8
		case "fanout":
			c.Window = 16
		default:
			c.Window = 1
		}
	}
	if c.RawBatch <= 0 {
		c.RawBatch = 128
	}
	if c.Edges <= 0 {
		c.Edges = 1
		if c.Scenario == "fanout" {
			c.Edges = 2
		}
	}
	if c.Members <= 0 {
		c.Members = 1000
	}
	if c.Hold <= 0 {
		c.Hold = 20 * time.Second
	}
	if c.HistorySizes == nil {
		c.HistorySizes = []uint64{10_000, 1_000_000}
	}
	if c.HistoryConvs <= 0 {
		c.HistoryConvs = 100
	}
	if c.HistoryReads <= 0 {
		c.HistoryReads = 2000
	}
	if c.HistoryMode == "" {
		c.HistoryMode = HistoryNewest
	}
	if c.FillTimeout <= 0 {
		c.FillTimeout = 3 * time.Minute
	}
	if c.Calibrate <= 0 {
		c.Calibrate = 15 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.DialConc <= 0 {
		c.DialConc = 64
	}
	if c.JWTKeyID == "" {
		c.JWTKeyID = "default"
	}
	if c.StormMode == "" {
		c.StormMode = StormKill
	}
	return c
}

// conns is the connection count for scenario s.
func (c Config) conns(s string) int {
	if c.Conns > 0 {
		return c.Conns
	}
	switch s {
	case "relay":
		return 1000
	case "persist", "memory":
		return 200
	case "idle", "storm":
		return 10_000
	case "history":
		return 1
	}
	return 1000
}

// parseAddrs parses "127.0.0.2-127.0.0.9" ranges and comma lists.
func parseAddrs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("bad address %q (IPv4 or a range a-b)", lo)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil {
			return nil, fmt.Errorf("bad address %q (IPv4 or a range a-b)", hi)
		}
		x, y := ipNum(a), ipNum(b)
		if y < x || y-x > 1024 {
			return nil, fmt.Errorf("bad range %q (at most 1,024 addresses, low first)", part)
		}
		for n := x; n <= y; n++ {
			out = append(out, net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)).String())
		}
	}
	return out, nil
}

func ipNum(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

// parseCounts parses "10000,1e6,1000000".
func parseCounts(s string) ([]uint64, error) {
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(strings.ReplaceAll(part, "_", ""))
		if part == "" {
			continue
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil || f < 1 {
			return nil, fmt.Errorf("bad count %q", part)
		}
		out = append(out, uint64(f))
	}
	return out, nil
}
