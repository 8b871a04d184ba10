package bench

import (
	"fmt"
	"io"
	"math"
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
	// Split is false when server and generator shared one process: then
	// ServerUs is the total and GeneratorUs is zero.
	Split             bool    `json:"split"`
	ServerUs          float64 `json:"server_us"`
	GeneratorUs       float64 `json:"generator_us"`
	ServerUsPerMsg    float64 `json:"server_us_per_msg"`
	GeneratorUsPerMsg float64 `json:"generator_us_per_msg"`
	// ServerCores and GeneratorCores are the mean cores busy over the run.
	ServerCores    float64 `json:"server_cores"`
	GeneratorCores float64 `json:"generator_cores"`
}

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
}

// HistoryPoint is the newest-page latency with Stored messages in the stream.
type HistoryPoint struct {
	Stored      uint64   `json:"stored"`
	Convs       int      `json:"convs"`
	PerConv     uint64   `json:"msgs_per_conv"`
	FillSeconds float64  `json:"fill_s"`
	Reads       uint64   `json:"reads"`
	Latency     *Latency `json:"latency"`
}

// IdleFigures are the edge's cost per idle connection.
type IdleFigures struct {
	Pid            int     `json:"pid"`
	RSSBeforeMiB   float64 `json:"rss_before_mib"`
	RSSAfterMiB    float64 `json:"rss_after_mib"`
	RSSPerConnKiB  float64 `json:"rss_per_conn_kib"`
	HoldSeconds    float64 `json:"hold_s"`
	CPUCorePercent float64 `json:"cpu_core_percent"`
	// CPUUsPerConnS is CPU microseconds per connection per second held.
	CPUUsPerConnS float64 `json:"cpu_us_per_conn_s"`
	DialSeconds   float64 `json:"dial_s"`
}

// StormFigures are the edge restart figures.
type StormFigures struct {
	Clients int `json:"clients"`
	// Resumed counts clients that reconnected and synced after the restart.
	Resumed int `json:"resumed"`
	// ResumeSeconds is from the start of the edge shutdown until the last
	// client resumed; AfterRestartSeconds from when the new edge listened.
	ResumeSeconds       float64 `json:"resume_s"`
	AfterRestartSeconds float64 `json:"after_restart_s"`
	DownSeconds         float64 `json:"down_s"`
	// Acked and Received count the messages of the traffic that ran through
	// the restart; Lost = acked messages a receiver never got.
	Acked    uint64 `json:"acked"`
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
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
	// Throughput is Delivered per second over the window (Unit says what).
	Throughput float64  `json:"throughput"`
	Unit       string   `json:"unit"`
	Latency    *Latency `json:"latency,omitempty"`
	CPU        *CPU     `json:"cpu,omitempty"`

	// PersistPending is the PERSIST consumer's backlog (pending + unacked)
	// when the run ended: how far MongoDB is behind JetStream. -1: unknown.
	PersistPending int64           `json:"persist_pending"`
	Persist        *PersistFigures `json:"persist,omitempty"`
	History        []HistoryPoint  `json:"history,omitempty"`
	Idle           *IdleFigures    `json:"idle,omitempty"`
	Storm          *StormFigures   `json:"storm,omitempty"`

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
	head := []string{"run", "conns", "s", "sent", "delivered", "err", "throughput", "p50 ms", "p99 ms", "p99.9 ms", "srv us/msg", "gen us/msg"}
	var rows [][]string
	var add func(r *Result, indent string)
	add = func(r *Result, indent string) {
		srv, gen := "-", "-"
		if r.CPU != nil {
			srv = fnum(r.CPU.ServerUsPerMsg)
			if r.CPU.Split {
				gen = fnum(r.CPU.GeneratorUsPerMsg)
			} else {
				srv += " (both)"
			}
		}
		tp := "-"
		if r.Throughput > 0 {
			tp = fnum(r.Throughput) + " " + r.Unit
		}
		rows = append(rows, []string{indent + r.Name, fmt.Sprint(r.Conns), fmt.Sprintf("%.1f", r.Seconds),
			commas(int64(r.Sent)), commas(int64(r.Delivered)), commas(int64(r.Errors)), tp,
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

func writeDetails(w io.Writer, r *Result, md bool) {
	var lines []string
	if r.PersistPending >= 0 && r.Scenario != "baseline" {
		lines = append(lines, fmt.Sprintf("MongoDB behind JetStream at the end: %s messages (PERSIST pending + unacked)", commas(r.PersistPending)))
	}
	if p := r.Persist; p != nil {
		drain := fmt.Sprintf("%.1f s", p.DrainSeconds)
		if p.DrainSeconds < 0 {
			drain = "not drained in time"
		}
		lines = append(lines, fmt.Sprintf("persisted %s msgs during the sends (%s msg/s); backlog slope %s msg/s over the second half; drained %s (%s msg/s with the sends stopped); backlog every second %v",
			commas(int64(p.Persisted)), fnum(p.Rate), fnum(p.BacklogSlope), drain, fnum(p.DrainRate), p.Backlog))
	}
	for _, h := range r.History {
		lines = append(lines, fmt.Sprintf("history: %s stored (%d convs x %s, filled in %.1f s): newest-50 page p50 %s ms, p99 %s ms over %d reads",
			commas(int64(h.Stored)), h.Convs, commas(int64(h.PerConv)), h.FillSeconds,
			lat(h.Latency, func(l *Latency) float64 { return l.P50 }), lat(h.Latency, func(l *Latency) float64 { return l.P99 }), h.Reads))
	}
	if i := r.Idle; i != nil {
		lines = append(lines, fmt.Sprintf("idle: pid %d RSS %.1f -> %.1f MiB = %.1f KiB/conn; CPU %.2f%% of a core over %.0f s held (%.2f us per conn per s); dialed in %.1f s",
			i.Pid, i.RSSBeforeMiB, i.RSSAfterMiB, i.RSSPerConnKiB, i.CPUCorePercent, i.HoldSeconds, i.CPUUsPerConnS, i.DialSeconds))
	}
	if s := r.Storm; s != nil {
		lines = append(lines, fmt.Sprintf("storm: %d/%d clients resumed %.2f s after the shutdown started (%.2f s after the new edge listened; edge down %.2f s); acked %d, received %d, lost %d",
			s.Resumed, s.Clients, s.ResumeSeconds, s.AfterRestartSeconds, s.DownSeconds, s.Acked, s.Received, s.Lost))
	}
	if c := r.CPU; c != nil {
		if c.Split {
			lines = append(lines, fmt.Sprintf("CPU: server %.2f cores (%s us/msg), generator %.2f cores (%s us/msg)", c.ServerCores, fnum(c.ServerUsPerMsg), c.GeneratorCores, fnum(c.GeneratorUsPerMsg)))
		} else {
			lines = append(lines, fmt.Sprintf("CPU: server and generator in one process: %.2f cores (%s us/msg together)", c.ServerCores, fnum(c.ServerUsPerMsg)))
		}
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
