package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// CPU is the CPU time of a run, split between the server and the load
// generator when they ran in different processes.
type CPU struct {
	// Split is false when server and generator shared one process (an
	// in-process target with --procs 0): then ServerUs is the total and
	// GeneratorUs is zero.
	Split bool `json:"split"`
	// Server says what the server figures measure: "this process,
	// getrusage" for an in-process server (the bench process, generator
	// children excluded), "pids 12,34, /proc/<pid>/stat" for a running
	// target, or "" when unknown (a remote target whose processes were not
	// found: see --edge-pid); the server figures are then 0.
	Server string `json:"server"`
	// ServerPIDs are the measured processes of a running target.
	ServerPIDs []int `json:"server_pids,omitempty"`
	// Generator says what the generator figures measure.
	Generator string `json:"generator,omitempty"`
	// Per is what the per-unit figures divide by: "msg" (a delivered
	// message), "delivery" (fanout), "page" (history) or "conn-s" (idle: a
	// connection held for a second); Count is how many there were.
	Per   string  `json:"per"`
	Count float64 `json:"count"`
	// ServerUs and GeneratorUs are CPU microseconds (user + system) over the
	// run's window.
	ServerUs    float64 `json:"server_us"`
	GeneratorUs float64 `json:"generator_us"`
	// ServerUsPerMsg and GeneratorUsPerMsg are those over Count.
	ServerUsPerMsg    float64 `json:"server_us_per_msg"`
	GeneratorUsPerMsg float64 `json:"generator_us_per_msg"`
	// ServerCores and GeneratorCores are the mean cores busy over the run.
	ServerCores    float64 `json:"server_cores"`
	GeneratorCores float64 `json:"generator_cores"`
	// ServerRuntime is the in-process server's Go scheduler latency and
	// GC over the window (with --procs 0 the generator shares them); nil
	// for a running target.
	ServerRuntime *GoRuntime `json:"server_runtime,omitempty"`
	// PersistDrain is the relay's accounting of the PERSIST backlog left
	// at the end of the window: the server CPU of storing it, so that the
	// server's cost per message includes every message's write to MongoDB
	// (nil: not measured, as in the other scenarios).
	PersistDrain *PersistDrain `json:"persist_drain,omitempty"`
}

// PersistDrain is the catch-up of the persist role after a relay window:
// the bench waits (bounded) until the PERSIST consumer has nothing pending
// or unacked and counts the server CPU of that wait too. The generator is
// idle then (its clients have closed), so only the server has a drain
// figure.
type PersistDrain struct {
	// Backlog is the PERSIST consumer's pending + unacked messages when
	// the window ended.
	Backlog uint64 `json:"backlog"`
	// Seconds is how long the backlog took to reach 0; -1 when it did not
	// within the bound (ServerUs then covers the wait up to the bound).
	Seconds float64 `json:"seconds"`
	// ServerUs is the server's CPU microseconds over the drain.
	ServerUs float64 `json:"server_us"`
	// ServerUsPerMsg is the server's CPU of the window and the drain
	// together over CPU.Count: the cost per message with every message
	// stored (CPU.ServerUsPerMsg is the window's alone).
	ServerUsPerMsg float64 `json:"server_us_per_msg"`
	// Skipped says why there was nothing to drain here (the persist role
	// does not run in the measured processes); the figures are then the
	// window's.
	Skipped string `json:"skipped,omitempty"`
}

// known reports whether the server side was measured.
func (c *CPU) known() bool { return c.Server != "" }

// PersistFigures are the MongoDB persistence figures of persist.
type PersistFigures struct {
	// Persisted is how many messages the PERSIST consumer acked (stored in
	// MongoDB) during the window; Rate is that per second.
	Persisted uint64  `json:"persisted"`
	Rate      float64 `json:"persisted_per_s"`
	// Backlog is the PERSIST consumer's pending + unacked messages, sampled
	// every second.
	Backlog []uint64 `json:"backlog"`
	// BacklogSlope is the backlog growth over the second half of the run
	// (messages per second): about 0 when persistence keeps up.
	BacklogSlope float64 `json:"backlog_slope_per_s"`
	// DrainSeconds is how long the backlog took to reach 0 after the sends
	// stopped (-1: not within the drain timeout).
	DrainSeconds float64 `json:"drain_s"`
	// DrainRate is the backlog at the end of the sends over DrainSeconds:
	// the persist worker's rate with the CPU to itself.
	DrainRate float64 `json:"drain_per_s,omitempty"`
	// Alone is set on the run that measures the role with the cores to
	// itself: the PERSIST consumer paused while flat-out sends built a
	// backlog, then resumed; Persisted, Rate, DrainSeconds and DrainRate are
	// that drain's, and the sends' figures are not persisted figures.
	Alone bool `json:"alone,omitempty"`
	// EndToEndRate is the messages accepted (acked) in the window over the
	// time from go until the backlog was back to 0, that is until every one
	// was in MongoDB: the rate sends and persistence sustain together on
	// the target. 0 when the backlog did not drain. --rate-frac runs at a
	// fraction of the calibration's.
	EndToEndRate float64 `json:"end_to_end_per_s"`
	// BacklogStart, BacklogMid and BacklogEnd are the backlog at the start,
	// the middle and the end of the sends; BacklogMax the largest during
	// them; BacklogSlopeAll the growth over the whole window (msg/s).
	BacklogStart    uint64  `json:"backlog_start"`
	BacklogMid      uint64  `json:"backlog_mid"`
	BacklogEnd      uint64  `json:"backlog_end"`
	BacklogMax      uint64  `json:"backlog_max"`
	BacklogSlopeAll float64 `json:"backlog_slope_all_per_s"`
}

// HistoryPoint is the page latency with Stored messages in the stream
// (newest pages) or in MongoDB (archive pages).
type HistoryPoint struct {
	// Page is the page read: "newest-50" or "archive 200-message".
	Page        string   `json:"page,omitempty"`
	Stored      uint64   `json:"stored"`
	Convs       int      `json:"convs"`
	PerConv     uint64   `json:"msgs_per_conv"`
	FillSeconds float64  `json:"fill_s"`
	Reads       uint64   `json:"reads"`
	Latency     *Latency `json:"latency"`
	// ServerUsPerPage and GeneratorUsPerPage are the CPU of this point's
	// reads per page (0: not measured).
	ServerUsPerPage    float64 `json:"server_us_per_page,omitempty"`
	GeneratorUsPerPage float64 `json:"generator_us_per_page,omitempty"`
}

// IdleFigures are the edge's cost per idle connection.
type IdleFigures struct {
	Pid            int     `json:"pid"`
	RSSBeforeMiB   float64 `json:"rss_before_mib"`
	RSSAfterMiB    float64 `json:"rss_after_mib"`
	RSSPerConnKiB  float64 `json:"rss_per_conn_kib"`
	HoldSeconds    float64 `json:"hold_s"`
	CPUCorePercent float64 `json:"cpu_core_percent"`
	// RestCorePercent is the process's CPU before the clients connected
	// (its own background work: consumers' pulls, timers), measured over
	// RestSeconds; ConnsCorePercent is CPUCorePercent less that: what the
	// connections cost.
	RestCorePercent  float64 `json:"rest_core_percent"`
	RestSeconds      float64 `json:"rest_s"`
	ConnsCorePercent float64 `json:"conns_core_percent"`
	// CPUUsPerConnS is CPU microseconds per connection per second held.
	CPUUsPerConnS float64 `json:"cpu_us_per_conn_s"`
	DialSeconds   float64 `json:"dial_s"`
}

// StormFigures are the edge restart figures.
type StormFigures struct {
	// Mode is how the edge went down: kill (SIGKILL) or graceful (SIGTERM:
	// lame duck, then drain).
	Mode    string `json:"mode"`
	Clients int    `json:"clients"`
	// Resumed counts clients that reconnected and synced after the restart.
	Resumed int `json:"resumed"`
	// ResumeSeconds is from the kill (graceful: the SIGTERM) until the last
	// client resumed; AfterRestartSeconds from when the new edge was ready
	// (its "natter ready" line: listening and serving); ResumeP50, P90 and
	// P99 are the clients' resume times from the kill.
	ResumeSeconds       float64 `json:"resume_s"`
	AfterRestartSeconds float64 `json:"after_restart_s"`
	ResumeP50           float64 `json:"resume_p50_s"`
	ResumeP90           float64 `json:"resume_p90_s"`
	ResumeP99           float64 `json:"resume_p99_s"`
	// DownSeconds is from the kill until the new edge was ready: StopSeconds
	// until the old process was gone, then StartSeconds from spawning the
	// new one until ready (BindTries processes, when the address was still
	// in use).
	DownSeconds  float64 `json:"down_s"`
	StopSeconds  float64 `json:"stop_s"`
	StartSeconds float64 `json:"start_s"`
	BindTries    int     `json:"bind_tries"`
	// OldEdgeExit is how the old edge process ended, as the OS reported it
	// ("signal: killed" after a kill, "exit status 0" after a graceful
	// stop).
	OldEdgeExit string `json:"old_edge_exit"`
	// EdgeCPUSeconds is the CPU time of the edge processes over the run
	// (the old one from go to the kill, the new one from its start).
	EdgeCPUSeconds float64 `json:"edge_cpu_s"`
	// SubChanges counts the subscriptions made and dropped at the
	// in-process NATS server from the kill to the end (its sublist's
	// inserts and removes): a figure of the storm's work that does not
	// move with the machine's load. The dropped edge's are one batch.
	SubChanges uint64 `json:"sub_changes,omitempty"`
	// ResumedBySecond[k] is how many clients had resumed k+1 seconds after
	// the kill.
	ResumedBySecond []int `json:"resumed_by_second"`
	// FirstDialP50, P99 and Max are the times from the kill to the
	// clients' first reconnect attempt (TCP dial): the SDK's first delay.
	// Dials and FailedDials count the clients' TCP dials after the kill
	// (failed: mostly refused while no edge listened).
	FirstDialP50 float64 `json:"first_dial_p50_s"`
	FirstDialP99 float64 `json:"first_dial_p99_s"`
	FirstDialMax float64 `json:"first_dial_max_s"`
	Dials        uint64  `json:"dials"`
	FailedDials  uint64  `json:"failed_dials"`
	// Acked and Received count the messages of the traffic that ran through
	// the restart; Lost = acked messages a receiver never got.
	Acked    uint64 `json:"acked"`
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
	// Presence is --storm-presence (0: off); PresenceEvents the presence
	// events the clients got from just before the kill to the end, and
	// PresencePerSecond those per second of the resume window (kill to the
	// last resume).
	Presence          int     `json:"presence,omitempty"`
	PresenceEvents    uint64  `json:"presence_events,omitempty"`
	PresencePerSecond float64 `json:"presence_per_s,omitempty"`
}

// Ratio compares a natter figure with its baseline.
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Check is one target of issue 6 against the measured figure.
type Check struct {
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
	// Scaled is set when the run was smaller than the target's size, so the
	// check is indicative only.
	Scaled bool `json:"scaled,omitempty"`
}

// Result is the outcome of one scenario (or one baseline).
type Result struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Conns    int     `json:"conns"`
	Rate     float64 `json:"rate"`
	Size     int     `json:"size"`
	Procs    int     `json:"procs"`
	Seconds  float64 `json:"seconds"`

	Connected int    `json:"connected"`
	Sent      uint64 `json:"sent"`
	Delivered uint64 `json:"delivered"`
	Errors    uint64 `json:"errors"`
	// Acked is how many sends natter acknowledged (an ack means the message
	// is in JetStream); Lost is how many acked messages a receiver did not
	// get within the drain timeout (relay, persist, storm).
	Acked uint64 `json:"acked"`
	Lost  uint64 `json:"lost"`
	// SourceAddrs counts the generator's dials by local source address, as
	// the sockets reported them (reconnects count again).
	SourceAddrs map[string]uint64 `json:"source_addrs,omitempty"`
	// Throughput is Delivered per second over the window (Unit says what).
	Throughput float64  `json:"throughput"`
	Unit       string   `json:"unit"`
	Latency    *Latency `json:"latency,omitempty"`
	// AckLatency is send->ack of the relay and persist senders: the
	// append (JetStream durable), without the delivery after it.
	AckLatency *Latency `json:"ack_latency,omitempty"`
	CPU        *CPU     `json:"cpu,omitempty"`

	// PersistPending is the PERSIST consumer's backlog (pending + unacked)
	// when the run ended: how far MongoDB is behind JetStream. -1: unknown.
	PersistPending int64           `json:"persist_pending"`
	Persist        *PersistFigures `json:"persist,omitempty"`
	History        []HistoryPoint  `json:"history,omitempty"`
	Idle           *IdleFigures    `json:"idle,omitempty"`
	Storm          *StormFigures   `json:"storm,omitempty"`
	Memory         *MemoryFigures  `json:"memory,omitempty"`

	Baselines []*Result `json:"baselines,omitempty"`
	Ratios    []Ratio   `json:"ratios,omitempty"`
	Checks    []Check   `json:"checks,omitempty"`
	Notes     []string  `json:"notes,omitempty"`
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Result) ratio(name string, natter, base float64) {
	if base <= 0 || math.IsNaN(natter) || math.IsNaN(base) {
		return
	}
	r.Ratios = append(r.Ratios, Ratio{Name: name, Value: math.Round(natter/base*1000) / 1000})
}

func (r *Result) check(target, got string, met, scaled bool) {
	r.Checks = append(r.Checks, Check{Target: target, Got: got, Met: met, Scaled: scaled})
}

// Report is what --json writes.
type Report struct {
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Command  string    `json:"command"`
	Results  []*Result `json:"results"`
	Warnings []string  `json:"warnings,omitempty"`
}

func fnum(f float64) string {
	switch {
	case math.IsNaN(f):
		return "-"
	case f >= 100:
		return commas(int64(math.Round(f)))
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func lat(l *Latency, f func(*Latency) float64) string {
	if l == nil {
		return "-"
	}
	return fnum(f(l))
}

// writeTable prints the results as an aligned table (markdown when md).
func writeTable(w io.Writer, rs []*Result, md bool) {
	head := []string{"run", "conns", "s", "sent", "delivered", "err", "lost", "throughput", "p50 ms", "p99 ms", "p99.9 ms", "srv us/msg", "gen us/msg"}
	var rows [][]string
	var add func(r *Result, indent string)
	add = func(r *Result, indent string) {
		srv, gen := cpuCells(r.CPU)
		lost := "-"
		if r.Acked > 0 {
			lost = commas(int64(r.Lost))
		}
		tp := "-"
		if r.Throughput > 0 {
			tp = fnum(r.Throughput) + " " + r.Unit
		}
		rows = append(rows, []string{indent + r.Name, fmt.Sprint(r.Conns), fmt.Sprintf("%.1f", r.Seconds),
			commas(int64(r.Sent)), commas(int64(r.Delivered)), commas(int64(r.Errors)), lost, tp,
			lat(r.Latency, func(l *Latency) float64 { return l.P50 }),
			lat(r.Latency, func(l *Latency) float64 { return l.P99 }),
			lat(r.Latency, func(l *Latency) float64 { return l.P999 }), srv, gen})
		for _, b := range r.Baselines {
			add(b, indent+"  baseline: ")
		}
	}
	for _, r := range rs {
		add(r, "")
	}
	if md {
		fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
		for _, row := range rows {
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		writeDetails(w, r, md)
		for _, b := range r.Baselines {
			writeDetails(w, b, md)
		}
	}
}

// cpuCells are the table's "srv us/msg" and "gen us/msg" cells: "-" when
// not measured, a unit suffix when the figure is not per message.
func cpuCells(c *CPU) (srv, gen string) {
	srv, gen = "-", "-"
	if c == nil || c.Count <= 0 {
		return srv, gen
	}
	unit := ""
	if c.Per != "" && c.Per != "msg" && c.Per != "delivery" {
		unit = " /" + c.Per
	}
	if c.known() {
		srv = fnum(c.ServerUsPerMsg) + unit
		if pd := c.PersistDrain; pd != nil && pd.Skipped == "" && pd.ServerUs > 0 {
			srv += " (" + fnum(pd.ServerUsPerMsg) + " with the drain)"
		}
	}
	switch {
	case !c.Split:
		srv += " (both)"
	default:
		gen = fnum(c.GeneratorUsPerMsg) + unit
	}
	return srv, gen
}

func writeDetails(w io.Writer, r *Result, md bool) {
	var lines []string
	if r.PersistPending >= 0 && r.Scenario != "baseline" {
		lines = append(lines, fmt.Sprintf("MongoDB behind JetStream at the end: %s messages (PERSIST pending + unacked)", commas(r.PersistPending)))
	}
	if a := r.AckLatency; a != nil {
		lines = append(lines, fmt.Sprintf("send->ack (durable in JetStream) p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms over %s acks", a.P50, a.P99, a.P999, commas(int64(a.Count))))
	}
	if p := r.Persist; p != nil && p.Alone {
		lines = append(lines, fmt.Sprintf("the role alone: persisted %s msgs of a backlog of %s in %.2f s = %s msg/s, with nothing else running; backlog every second %v",
			commas(int64(p.Persisted)), commas(int64(p.BacklogStart)), p.DrainSeconds, fnum(p.Rate), p.Backlog))
	} else if p != nil {
		drain := fmt.Sprintf("%.1f s", p.DrainSeconds)
		if p.DrainSeconds < 0 {
			drain = "not drained in time"
		}
		lines = append(lines, fmt.Sprintf("persisted %s msgs during the sends (%s msg/s); drained %s (%s msg/s with the sends stopped); end to end (accepted / until all in MongoDB) %s msg/s",
			commas(int64(p.Persisted)), fnum(p.Rate), drain, fnum(p.DrainRate), fnum(p.EndToEndRate)))
		lines = append(lines, fmt.Sprintf("backlog start %s, middle %s, end %s, max %s; slope %s msg/s over the second half, %s msg/s over the whole window",
			commas(int64(p.BacklogStart)), commas(int64(p.BacklogMid)), commas(int64(p.BacklogEnd)), commas(int64(p.BacklogMax)), fnum(p.BacklogSlope), fnum(p.BacklogSlopeAll)))
		if len(p.Backlog) <= 120 {
			lines = append(lines, fmt.Sprintf("backlog every second %v", p.Backlog))
		} else {
			lines = append(lines, fmt.Sprintf("backlog every second: %d samples (in the JSON report)", len(p.Backlog)))
		}
	}
	for _, h := range r.History {
		page := h.Page
		if page == "" {
			page = "newest-50"
		}
		lines = append(lines, fmt.Sprintf("history: %s stored (%d convs x %s, filled in %.1f s): %s page p50 %s ms, p99 %s ms over %d reads",
			commas(int64(h.Stored)), h.Convs, commas(int64(h.PerConv)), h.FillSeconds, page,
			lat(h.Latency, func(l *Latency) float64 { return l.P50 }), lat(h.Latency, func(l *Latency) float64 { return l.P99 }), h.Reads))
		if h.ServerUsPerPage > 0 || h.GeneratorUsPerPage > 0 {
			lines[len(lines)-1] += fmt.Sprintf("; CPU per page: server %s us, generator %s us", fnum(h.ServerUsPerPage), fnum(h.GeneratorUsPerPage))
		}
	}
	if i := r.Idle; i != nil {
		lines = append(lines, fmt.Sprintf("idle: pid %d RSS %.1f -> %.1f MiB = %.1f KiB/conn; CPU %.2f%% of a core over %.0f s held (%.2f us per conn per s); dialed in %.1f s",
			i.Pid, i.RSSBeforeMiB, i.RSSAfterMiB, i.RSSPerConnKiB, i.CPUCorePercent, i.HoldSeconds, i.CPUUsPerConnS, i.DialSeconds))
		if i.RestSeconds > 0 {
			lines = append(lines, fmt.Sprintf("idle: the process at rest (no clients, %.0f s before dialing) %.2f%% of a core; the connections %.2f%%",
				i.RestSeconds, i.RestCorePercent, i.ConnsCorePercent))
		}
	}
	if s := r.Storm; s != nil {
		lines = append(lines, fmt.Sprintf("storm (%s): %d/%d clients resumed %.2f s after the %s (p50 %.2f s, p90 %.2f s, p99 %.2f s), %.2f s after the new edge was ready; edge down %.2f s (old process gone after %.2f s, new one ready %.2f s after its start); acked %d, received %d, lost %d",
			s.Mode, s.Resumed, s.Clients, s.ResumeSeconds, stormSignal(s.Mode), s.ResumeP50, s.ResumeP90, s.ResumeP99, s.AfterRestartSeconds,
			s.DownSeconds, s.StopSeconds, s.StartSeconds, s.Acked, s.Received, s.Lost))
		lines = append(lines, fmt.Sprintf("storm: first reconnect attempt p50 %.3f s, p99 %.3f s, max %.3f s after the %s; %s TCP dials since (%s failed); resumed by second after the %s: %v; edge processes' CPU %.2f s",
			s.FirstDialP50, s.FirstDialP99, s.FirstDialMax, stormSignal(s.Mode), commas(int64(s.Dials)), commas(int64(s.FailedDials)), stormSignal(s.Mode), s.ResumedBySecond, s.EdgeCPUSeconds))
		if s.Presence > 0 {
			lines = append(lines, fmt.Sprintf("storm presence: each client watches %d others; %s presence events to the clients from just before the %s to the end, %s/s over the resume window",
				s.Presence, commas(int64(s.PresenceEvents)), stormSignal(s.Mode), fnum(s.PresencePerSecond)))
		}
	}
	if c := r.CPU; c != nil {
		per := c.Per
		if per == "" {
			per = "msg"
		}
		switch {
		case !c.Split:
			lines = append(lines, fmt.Sprintf("CPU, server and generator in one process (%s): %.2f cores, %s us/%s together; n = %s %s",
				c.Server, c.ServerCores, fnum(c.ServerUsPerMsg), per, fnum(c.Count), per))
		case c.known():
			lines = append(lines, fmt.Sprintf("CPU: server %.2f cores, %s us/%s; generator %.2f cores, %s us/%s; n = %s %s (server: %s; generator: %s)",
				c.ServerCores, fnum(c.ServerUsPerMsg), per, c.GeneratorCores, fnum(c.GeneratorUsPerMsg), per, fnum(c.Count), per, c.Server, c.Generator))
		default:
			lines = append(lines, fmt.Sprintf("CPU: server not measured (no server process found on this machine: give --edge-pid); generator %.2f cores, %s us/%s; n = %s %s (generator: %s)",
				c.GeneratorCores, fnum(c.GeneratorUsPerMsg), per, fnum(c.Count), per, c.Generator))
		}
		if pd := c.PersistDrain; pd != nil {
			lines = append(lines, pd.line(c))
		}
		if g := c.ServerRuntime; g != nil {
			lines = append(lines, fmt.Sprintf("Go runtime of the in-process server: goroutines waited for a core p50 <= %.3f ms, p99 <= %.2f ms, p99.9 <= %.2f ms (%s waits); %d GC cycles, pauses p99 <= %.2f ms, max <= %.2f ms",
				g.SchedP50Ms, g.SchedP99Ms, g.SchedP999Ms, commas(int64(g.SchedCount)), g.GCCycles, g.GCPauseP99Ms, g.GCPauseMaxMs))
		}
	}
	if len(r.SourceAddrs) > 0 {
		addrs := make([]string, 0, len(r.SourceAddrs))
		for a := range r.SourceAddrs {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		parts := make([]string, 0, len(addrs))
		for _, a := range addrs {
			parts = append(parts, fmt.Sprintf("%s x%s", a, commas(int64(r.SourceAddrs[a]))))
		}
		lines = append(lines, "dials by source address: "+strings.Join(parts, ", "))
	}
	for _, ra := range r.Ratios {
		lines = append(lines, fmt.Sprintf("ratio %s: %.3f", ra.Name, ra.Value))
	}
	for _, c := range r.Checks {
		mark := "MET"
		if !c.Met {
			mark = "MISSED"
		}
		if c.Scaled {
			mark += " (scaled-down run)"
		}
		lines = append(lines, fmt.Sprintf("target %s: %s -> %s", c.Target, c.Got, mark))
	}
	lines = append(lines, r.Notes...)
	if len(lines) == 0 {
		return
	}
	if md {
		fmt.Fprintf(w, "**%s**\n\n", r.Name)
		for _, l := range lines {
			fmt.Fprintln(w, "- "+l)
		}
	} else {
		fmt.Fprintf(w, "%s:\n", r.Name)
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	fmt.Fprintln(w)
}
