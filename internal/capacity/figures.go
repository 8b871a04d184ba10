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
	srcMeasure = "plan:measure, 2026-12-07"
	srcIdle    = "natter bench idle, docs/benchmarks.md"
	srcLimit   = "configuration of this machine"
	srcStated  = "stated (not measured)"
)

// table is the figures of docs/capacity.md, "Figures"; TestDocFigures
// fails if the two disagree.
var table = []Figure{
	// CPU per 1:1 message (send and ack, the R3 append, one delivery, the
	// archive), by process kind or worker role, marginal (the processes'
	// CPU at rest taken off), with natter's default roles: no events role,
	// the push role without a provider (not consuming).
	{"msg.edge_us", 100, "us/msg", srcMeasure},
	{"msg.nats_us", 311, "us/msg", srcMeasure},
	{"msg.store_us", 212, "us/msg", srcMeasure},
	{"msg.persist_us", 64, "us/msg", srcMeasure},
	{"msg.fanout_us", 13, "us/msg", srcMeasure},
	{"msg.conversations_us", 20, "us/msg", srcMeasure},
	{"msg.other_us", 0, "us/msg", srcMeasure},
	{"msg.generator_us", 54, "us/msg", srcMeasure},
	// What the opt-in consumers on MSGS add to a message: the events role
	// (Load.EventsRole) and the push role with a provider
	// (Load.PushProviders), each its own process and the NATS nodes'
	// share (its consumer, and for the events role the EVENTS append).
	{"msg.events_us", 30, "us/msg", srcMeasure},
	{"msg.events_nats_us", 0, "us/msg", srcMeasure},
	{"msg.push_us", 13, "us/msg", srcMeasure},
	{"msg.push_nats_us", 0, "us/msg", srcMeasure},
	// CPU per delivery into a group (one member's device online).
	{"dlv.edge_us", 24.7, "us/delivery", srcMeasure},
	{"dlv.nats_us", 57.3, "us/delivery", srcMeasure},
	{"dlv.fanout_us", 0.9, "us/delivery", srcMeasure},
	{"dlv.conversations_us", 6.71, "us/delivery", srcMeasure},
	{"dlv.store_us", 17.2, "us/delivery", srcMeasure},
	{"dlv.persist_us", 3.44, "us/delivery", srcMeasure},
	{"dlv.events_us", 1.35, "us/delivery", srcMeasure},
	{"dlv.push_us", 0.9, "us/delivery", srcMeasure},
	{"dlv.generator_us", 13.4, "us/delivery", srcMeasure},
	// CPU of an idle process (consumers' pulls, heartbeats, timers).
	{"rest.nats_cores", 0.0143, "cores", srcMeasure},
	{"rest.store_cores", 0.0015, "cores", srcMeasure},
	{"rest.edge_cores", 0.0015, "cores", srcMeasure},
	{"rest.worker_cores", 0.00092, "cores", srcMeasure},
	// Connections.
	{"conn.kib", 14.9, "KiB/conn", srcIdle},
	{"conn.core_pct_per_10k", 0.67, "% of a core per 10,000 conns", srcIdle},
	{"conn.max_per_process", 20000, "conns", srcLimit},
	// Storage and memory.
	{"js.msgs_bytes_per_msg", 680, "bytes/msg per node", srcMeasure},
	{"js.events_bytes_per_msg", 625, "bytes/msg per node", srcMeasure},
	{"store.bytes_per_msg", 737, "bytes/msg", srcMeasure},
	{"nats.rss_mib", 65, "MiB per node", srcMeasure},
	{"nats.kib_per_msgps", 135, "KiB per msg/s", srcMeasure},
	{"edge.rss_mib", 52, "MiB per edge", srcMeasure},
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
