package capacity

import (
	"fmt"
	"sort"
)

// Figure is one measured (or stated) per-replica figure of the model.
type Figure struct {
	// Key names the figure in docs/capacity.md ("msg.persist_us").
	Key string
	// Value is the figure in Unit.
	Value float64
	// Unit says what Value counts ("us/msg", "cores", "bytes/msg").
	Unit string
	// Source says where the figure comes from: the run that measured it.
	Source string
}

// Figures are the per-replica figures the model works from, by key.
type Figures map[string]Figure

// Sources of the figures (docs/capacity.md, "Figures", says what each ran).
const (
	srcMeasure = "plan:measure, 2026-12-07 21:40"
	// srcMeasureOptIn: plan:measure:optin, the opt-in roles' own figures.
	srcMeasureOptIn = "plan:measure:optin, 2026-12-07 21:42"
	// srcOptIn: the NATS nodes' share of the opt-in consumers, from the
	// plan:measure and plan:measure:optin runs (docs/capacity.md says how).
	srcOptIn  = "plan:measure and :optin, estimated"
	srcIdle   = "natter bench idle, docs/benchmarks.md"
	srcLimit  = "configuration of this machine"
	srcStated = "stated (not measured)"
)

// table is the figures of docs/capacity.md, "Figures"; TestDocFigures
// fails if the two disagree.
var table = []Figure{
	// CPU per 1:1 message (send and ack, the R3 append, one delivery, the
	// archive), by process kind or worker role, marginal (the processes'
	// CPU at rest taken off), with natter's default roles: no events role,
	// the push role without a provider (not consuming).
	{"msg.edge_us", 125, "us/msg", srcMeasure},
	{"msg.nats_us", 284, "us/msg", srcMeasure},
	{"msg.store_us", 252, "us/msg", srcMeasure},
	{"msg.persist_us", 75, "us/msg", srcMeasure},
	{"msg.fanout_us", 17, "us/msg", srcMeasure},
	{"msg.conversations_us", 26, "us/msg", srcMeasure},
	{"msg.other_us", 0, "us/msg", srcMeasure},
	{"msg.generator_us", 66, "us/msg", srcMeasure},
	// What the opt-in consumers on MSGS add to a message: the events role
	// (Load.EventsRole) and the push role with a provider
	// (Load.PushProviders), each its own process and the NATS nodes'
	// share (its consumer, and for the events role the EVENTS append).
	{"msg.events_us", 31, "us/msg", srcMeasureOptIn},
	{"msg.events_nats_us", 65, "us/msg", srcOptIn},
	{"msg.push_us", 27, "us/msg", srcMeasureOptIn},
	{"msg.push_nats_us", 32, "us/msg", srcOptIn},
	// CPU per delivery into a group (one member's device online).
	{"dlv.edge_us", 24.2, "us/delivery", srcMeasure},
	{"dlv.nats_us", 32.6, "us/delivery", srcMeasure},
	{"dlv.fanout_us", 1.34, "us/delivery", srcMeasure},
	{"dlv.conversations_us", 6.43, "us/delivery", srcMeasure},
	{"dlv.store_us", 12.8, "us/delivery", srcMeasure},
	{"dlv.persist_us", 2.85, "us/delivery", srcMeasure},
	{"dlv.events_us", 1.27, "us/delivery", srcMeasureOptIn},
	{"dlv.push_us", 2.63, "us/delivery", srcMeasureOptIn},
	{"dlv.generator_us", 14.2, "us/delivery", srcMeasure},
	// CPU of an idle process (consumers' pulls, heartbeats, timers).
	{"rest.nats_cores", 0.0208, "cores", srcMeasure},
	{"rest.store_cores", 0.0365, "cores", srcMeasure},
	{"rest.edge_cores", 0.00275, "cores", srcMeasure},
	{"rest.worker_cores", 0.00212, "cores", srcMeasure},
	// Connections.
	{"conn.kib", 14.9, "KiB/conn", srcIdle},
	{"conn.core_pct_per_10k", 0.67, "% of a core per 10,000 conns", srcIdle},
	{"conn.max_per_process", 20000, "conns", srcLimit},
	// Storage and memory.
	{"js.msgs_bytes_per_msg", 681, "bytes/msg per node", srcMeasure},
	{"js.events_bytes_per_msg", 625, "bytes/msg per node", srcMeasureOptIn},
	{"store.bytes_per_msg", 740, "bytes/msg", srcMeasure},
	{"nats.rss_mib", 64, "MiB per node", srcMeasure},
	{"nats.kib_per_msgps", 111, "KiB per msg/s", srcMeasure},
	{"edge.rss_mib", 55, "MiB per edge", srcMeasure},
}

// Default returns the figures compiled into this binary.
func Default() Figures {
	f := Figures{}
	for _, x := range table {
		f[x.Key] = x
	}
	return f
}

// v is the value of key; a key missing from the table is a bug.
func (f Figures) v(key string) float64 {
	x, ok := f[key]
	if !ok {
		panic(fmt.Sprintf("capacity: no figure %q", key))
	}
	return x.Value
}

// Sorted returns the figures in the order of docs/capacity.md.
func (f Figures) Sorted() []Figure {
	out := make([]Figure, 0, len(f))
	for _, x := range f {
		out = append(out, x)
	}
	order := map[string]int{}
	for i, x := range table {
		order[x.Key] = i
	}
	sort.Slice(out, func(i, j int) bool {
		oi, iok := order[out[i].Key]
		oj, jok := order[out[j].Key]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return out[i].Key < out[j].Key
	})
	return out
}
