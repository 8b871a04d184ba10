package capacity

import (
	"fmt"
	"math"
)

// Load is what a deployment must carry, and the size of its replicas.
// Every zero value takes the default its field names (see [Load.WithDefaults]).
type Load struct {
	// Users is the number of registered users. Required (>= 1).
	Users float64
	// Online is the share of users connected at the peak, in (0, 1].
	// Required.
	Online float64
	// MsgsPerUserDay is how many messages a user sends a day on average.
	// Required (> 0).
	MsgsPerUserDay float64
	// GroupSize is the members of the conversation an average message goes
	// to, the sender included (2 = direct). Zero means 2.
	GroupSize float64
	// PeakFactor is the peak message rate over the day's mean rate. Zero
	// means 3.
	PeakFactor float64
	// Devices is the connections per online user. Zero means 1.
	Devices float64
	// ConvsPerUser is the conversations a user is in (the hot tier keeps
	// HotTier messages of each). Zero means 20.
	ConvsPerUser float64
	// HotTier is the messages per conversation the MSGS stream keeps
	// (natter's --hot-tier). Zero means 10,000.
	HotTier float64
	// RetentionDays is how long the archive (MongoDB) keeps messages, and
	// the horizon of the hot tier's growth. Zero means 365.
	RetentionDays float64
	// EventsDays is how long the EVENTS stream keeps an event (natter's
	// events max age); it counts only with EventsRole. Zero means 7.
	EventsDays float64
	// EventsRole runs the events role, which copies every message into
	// the EVENTS stream for services that read message events there (add
	// events to natter worker's --roles): its replicas, its CPU and the
	// NATS nodes' share (its consumer on MSGS, the EVENTS append) and the
	// copies' bytes. False, natter's default roles: no events role.
	EventsRole bool
	// PushProviders says the push role has a provider configured (APNs,
	// FCM or Web Push): it reads every message (its consumer on MSGS, its
	// CPU per message and per delivery). False, natter's default: the role
	// runs but does not consume, so it costs only its processes at rest
	// and gets the minimum replicas.
	PushProviders bool
	// ReplicaCores is the cores of one edge or worker replica. Zero means
	// 2.
	ReplicaCores float64
	// EdgeMemGiB is the memory of one edge. Zero means 4.
	EdgeMemGiB float64
	// NATSCores is the cores of one NATS node. Zero means 4.
	NATSCores float64
	// Utilisation is the share of a replica's cores (and an edge's memory)
	// the plan fills at the peak, leaving the rest for bursts and for a
	// replica's loss. Zero means 0.6.
	Utilisation float64
	// MinReplicas is the fewest processes of each role and of edges, for
	// availability. Zero means 2.
	MinReplicas int
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Load) WithDefaults() Load {
	def := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	def(&l.GroupSize, 2)
	def(&l.PeakFactor, 3)
	def(&l.Devices, 1)
	def(&l.ConvsPerUser, 20)
	def(&l.HotTier, 10_000)
	def(&l.RetentionDays, 365)
	def(&l.EventsDays, 7)
	def(&l.ReplicaCores, 2)
	def(&l.EdgeMemGiB, 4)
	def(&l.NATSCores, 4)
	def(&l.Utilisation, 0.6)
	if l.MinReplicas == 0 {
		l.MinReplicas = 2
	}
	return l
}

// Check returns an error wrapping [ErrLoad] naming the first field out of
// range (after defaults).
func (l Load) Check() error {
	bad := func(field string, v float64, want string) error {
		return &LoadError{Field: field, Value: v, Want: want}
	}
	switch {
	case !(l.Users >= 1) || math.IsInf(l.Users, 0):
		return bad("Users", l.Users, ">= 1")
	case !(l.Online > 0 && l.Online <= 1):
		return bad("Online", l.Online, "a share in (0, 1]")
	case !(l.MsgsPerUserDay > 0) || math.IsInf(l.MsgsPerUserDay, 0):
		return bad("MsgsPerUserDay", l.MsgsPerUserDay, "> 0")
	case !(l.GroupSize >= 2) || math.IsInf(l.GroupSize, 0):
		return bad("GroupSize", l.GroupSize, ">= 2 (the sender and one member)")
	case !(l.PeakFactor >= 1) || math.IsInf(l.PeakFactor, 0):
		return bad("PeakFactor", l.PeakFactor, ">= 1")
	case !(l.Devices >= 1) || math.IsInf(l.Devices, 0):
		return bad("Devices", l.Devices, ">= 1")
	case !(l.ConvsPerUser >= 1) || math.IsInf(l.ConvsPerUser, 0):
		return bad("ConvsPerUser", l.ConvsPerUser, ">= 1")
	case !(l.HotTier >= 1) || math.IsInf(l.HotTier, 0):
		return bad("HotTier", l.HotTier, ">= 1")
	case !(l.RetentionDays > 0) || math.IsInf(l.RetentionDays, 0):
		return bad("RetentionDays", l.RetentionDays, "> 0")
	case !(l.EventsDays > 0) || math.IsInf(l.EventsDays, 0):
		return bad("EventsDays", l.EventsDays, "> 0")
	case !(l.ReplicaCores > 0) || math.IsInf(l.ReplicaCores, 0):
		return bad("ReplicaCores", l.ReplicaCores, "> 0")
	case !(l.EdgeMemGiB > 0) || math.IsInf(l.EdgeMemGiB, 0):
		return bad("EdgeMemGiB", l.EdgeMemGiB, "> 0")
	case !(l.NATSCores > 0) || math.IsInf(l.NATSCores, 0):
		return bad("NATSCores", l.NATSCores, "> 0")
	case !(l.Utilisation > 0 && l.Utilisation <= 1):
		return bad("Utilisation", l.Utilisation, "a share in (0, 1]")
	case l.MinReplicas < 1:
		return bad("MinReplicas", float64(l.MinReplicas), ">= 1")
	}
	return nil
}

// Role is the plan for one kind of process.
type Role struct {
	// Name is "edge" or a worker role.
	Name string
	// Replicas is how many processes to run.
	Replicas int
	// Cores is the CPU the role needs at the peak, all replicas together.
	Cores float64
	// PerCore is the role's rate per core (messages/s, or deliveries/s
	// for PerCoreUnit "deliveries/s"), from the figures; 0: not a rate.
	PerCore     float64
	PerCoreUnit string
	// Why says what decided Replicas.
	Why string
}

// NATS is the plan for the NATS cluster.
type NATS struct {
	// Nodes is the number of nats-server nodes (3: the streams at R3).
	Nodes int
	// CoresPerNode is each node's CPU at the peak (every node stores every
	// message at R3; the streams' leaders do more).
	CoresPerNode float64
	// StorageGiB is each node's JetStream file storage after
	// RetentionDays: the hot tier, and the message events with the events
	// role.
	StorageGiB float64
	// MemoryGiB is each node's resident memory at the peak.
	MemoryGiB float64
	// HotDays is how many days of messages the hot tier holds when full
	// (at most RetentionDays): MSGS has no age limit, only HotTier per
	// conversation.
	HotDays float64
	// AppendsPerSec is the stream writes per second at the peak (MSGS,
	// and EVENTS with the events role), each replicated to every node.
	AppendsPerSec float64
}

// Mongo is the plan for MongoDB.
type Mongo struct {
	// StorageGiB is the archive after RetentionDays (the embedded store's
	// bytes per message; WiredTiger's compression makes real MongoDB
	// smaller).
	StorageGiB float64
	// DocsPerSec is the message documents written per second at the peak.
	DocsPerSec float64
	// WritesPerSec is the insert commands per second at the peak (the
	// persist role's batches): the write IOPS before the storage engine's
	// own grouping.
	WritesPerSec float64
	// MBPerSec is the bytes written per second at the peak.
	MBPerSec float64
	// Cores is the embedded store's CPU at the peak (FerretDB on SQLite;
	// a guide, not MongoDB's).
	Cores float64
}

// Plan is what a Load needs.
type Plan struct {
	Load Load
	// MeanMsgPerSec and PeakMsgPerSec are the messages sent per second.
	MeanMsgPerSec, PeakMsgPerSec float64
	// PeakDeliveriesPerSec are the pushes to online devices per second.
	PeakDeliveriesPerSec float64
	// Connections are the WebSockets open at the peak.
	Connections float64
	// Roles are the edges first, then every worker role.
	Roles []Role
	NATS  NATS
	Mongo Mongo
	// Warnings are limits the load reaches that replicas do not lift.
	Warnings []string
}

// workerRoles are the worker roles in the order a plan prints them, with
// the figures of their CPU per message and per delivery (none: off the
// message path, the minimum replicas) and when they read messages.
var workerRoles = []struct {
	name, msg, dlv string
	// runs: nil always; else whether the role runs at all for a load.
	runs func(Load) bool
	// reads: nil always; else whether the role reads the messages (a role
	// that runs but does not read costs only its processes at rest).
	reads func(Load) bool
	// idle says why a role that runs does not read the messages.
	idle string
}{
	{name: "persist", msg: "msg.persist_us", dlv: "dlv.persist_us"},
	{name: "fanout", msg: "msg.fanout_us", dlv: "dlv.fanout_us"},
	{name: "events", msg: "msg.events_us", dlv: "dlv.events_us", runs: func(l Load) bool { return l.EventsRole }},
	{name: "conversations", msg: "msg.conversations_us", dlv: "dlv.conversations_us"},
	{name: "push", msg: "msg.push_us", dlv: "dlv.push_us", reads: func(l Load) bool { return l.PushProviders }, idle: "minimum (no provider: not consuming)"},
	{name: "ingest"},
	{name: "api"},
	{name: "thumbs"},
	{name: "attachgc"},
}

// natsUs is the NATS nodes' CPU per 1:1 message for l: the default roles'
// and what the opt-in consumers on MSGS add.
func (f Figures) natsUs(l Load) float64 {
	us := f.v("msg.nats_us")
	if l.EventsRole {
		us += f.v("msg.events_nats_us")
	}
	if l.PushProviders {
		us += f.v("msg.push_nats_us")
	}
	return us
}

// Plan sizes a deployment for l (its zero fields at their defaults); it
// returns an error wrapping [ErrLoad] for a load out of range.
func (f Figures) Plan(l Load) (Plan, error) {
	l = l.WithDefaults()
	if err := l.Check(); err != nil {
		return Plan{}, err
	}
	p := Plan{Load: l}
	p.MeanMsgPerSec = l.Users * l.MsgsPerUserDay / 86400
	p.PeakMsgPerSec = p.MeanMsgPerSec * l.PeakFactor
	online := (l.GroupSize - 1) * l.Online * l.Devices // deliveries per message
	p.PeakDeliveriesPerSec = p.PeakMsgPerSec * online
	// A message's figures hold its first delivery; the others cost
	// dlv.* each (a direct message to an offline member is counted as
	// delivered: a little more than it costs).
	extra := p.PeakMsgPerSec * math.Max(0, online-1)
	p.Connections = l.Users * l.Online * l.Devices
	capacity := l.ReplicaCores * l.Utilisation
	replicas := func(cores float64) int { return max(l.MinReplicas, int(math.Ceil(cores/capacity-1e-9))) }

	// Edges: connections (memory, the open-file limit) or CPU.
	edgeCores := (p.PeakMsgPerSec*f.v("msg.edge_us") + extra*f.v("dlv.edge_us")) / 1e6
	edgeCores += p.Connections * f.v("conn.core_pct_per_10k") / 100 / 10_000
	memConns := (l.EdgeMemGiB*1024 - f.v("edge.rss_mib")) * 1024 * l.Utilisation / f.v("conn.kib")
	perEdge := math.Min(memConns, f.v("conn.max_per_process")*l.Utilisation)
	if perEdge < 1 {
		return Plan{}, &LoadError{Field: "EdgeMemGiB", Value: l.EdgeMemGiB, Want: fmt.Sprintf("room for connections above an edge's %v MiB at rest", f.v("edge.rss_mib"))}
	}
	byConns := int(math.Ceil(p.Connections / perEdge))
	byCPU := replicas(edgeCores)
	e := Role{Name: "edge", Cores: edgeCores, Replicas: max(byConns, byCPU)}
	switch {
	case byConns >= byCPU && byConns > l.MinReplicas:
		e.Why = fmt.Sprintf("connections: %s per edge (%s)", count(perEdge), map[bool]string{true: "memory", false: "open files"}[memConns <= f.v("conn.max_per_process")*l.Utilisation])
	case byCPU > l.MinReplicas:
		e.Why = "CPU"
	default:
		e.Why = "minimum"
	}
	p.Roles = append(p.Roles, e)

	for _, r := range workerRoles {
		if r.runs != nil && !r.runs(l) {
			continue
		}
		x := Role{Name: r.name}
		if r.reads != nil && !r.reads(l) {
			x.Replicas, x.Why = l.MinReplicas, r.idle
			p.Roles = append(p.Roles, x)
			continue
		}
		if r.msg != "" {
			x.Cores = p.PeakMsgPerSec * f.v(r.msg) / 1e6
			x.PerCore, x.PerCoreUnit = perCore(f.v(r.msg)), "msg/s"
		}
		if r.dlv != "" {
			x.Cores += extra * f.v(r.dlv) / 1e6
		}
		if r.name == "fanout" {
			x.PerCore, x.PerCoreUnit = perCore(f.v("dlv.fanout_us")), "deliveries/s"
		}
		x.Replicas = replicas(x.Cores)
		x.Why = "CPU"
		if x.Replicas == l.MinReplicas {
			x.Why = "minimum"
		}
		p.Roles = append(p.Roles, x)
	}

	// NATS: three nodes, every stream at R3.
	natsUs := f.natsUs(l)
	natsCores := (p.PeakMsgPerSec*natsUs + extra*f.v("dlv.nats_us")) / 1e6
	convs := l.Users * l.ConvsPerUser / l.GroupSize
	perDay := p.MeanMsgPerSec * 86400
	hot := math.Min(perDay*l.RetentionDays, convs*l.HotTier)
	storage, appends := hot*f.v("js.msgs_bytes_per_msg"), p.PeakMsgPerSec
	if l.EventsRole {
		storage += perDay * l.EventsDays * f.v("js.events_bytes_per_msg")
		appends += p.PeakMsgPerSec
	}
	p.NATS = NATS{
		Nodes:         3,
		CoresPerNode:  natsCores / 3,
		StorageGiB:    storage / (1 << 30),
		MemoryGiB:     (f.v("nats.rss_mib") + p.PeakMsgPerSec*f.v("nats.kib_per_msgps")/1024) / 1024,
		AppendsPerSec: appends,
		HotDays:       hot / perDay,
	}
	if p.NATS.CoresPerNode > l.NATSCores*l.Utilisation {
		p.Warnings = append(p.Warnings, fmt.Sprintf("NATS: each node needs %.1f cores at the peak, above %.0f%% of its %v: MSGS is one stream whose leader takes every append, so more nodes do not spread it; a node of %v cores carries ~%s 1:1 msg/s at %.0f%%: give the nodes more cores, or the log must be split over several streams (natter has one MSGS)",
			p.NATS.CoresPerNode, l.Utilisation*100, l.NATSCores, l.NATSCores, count(l.NATSCores*l.Utilisation*3e6/natsUs), l.Utilisation*100))
	}

	// MongoDB: one document per message; persist's batches (up to 1,024,
	// 2 in flight per replica, at most one per 20 ms linger each).
	persist := p.Roles[1].Replicas // the edges, then persist
	p.Mongo = Mongo{
		StorageGiB:   perDay * l.RetentionDays * f.v("store.bytes_per_msg") / (1 << 30),
		DocsPerSec:   p.PeakMsgPerSec,
		WritesPerSec: math.Max(p.PeakMsgPerSec/1024, math.Min(p.PeakMsgPerSec, float64(persist)*2*50)),
		MBPerSec:     p.PeakMsgPerSec * f.v("store.bytes_per_msg") / 1e6,
		Cores:        (p.PeakMsgPerSec*f.v("msg.store_us") + extra*f.v("dlv.store_us")) / 1e6,
	}
	return p, nil
}

// perCore is the rate per core of a cost in microseconds.
func perCore(us float64) float64 {
	if us <= 0 {
		return 0
	}
	return 1e6 / us
}

// count formats n with thousands separators.
func count(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
