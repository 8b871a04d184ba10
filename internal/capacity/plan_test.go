package capacity

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// testFigures are round figures whose plan is worked out by hand below.
func testFigures() Figures {
	f := Default()
	set := func(k string, v float64) {
		x, ok := f[k]
		if !ok {
			panic("no figure " + k)
		}
		x.Value = v
		f[k] = x
	}
	for k, v := range map[string]float64{
		"msg.edge_us": 100, "msg.nats_us": 300, "msg.store_us": 100, "msg.persist_us": 600, "msg.fanout_us": 50,
		"msg.conversations_us": 0, "msg.other_us": 0, "msg.generator_us": 100,
		"msg.events_us": 50, "msg.events_nats_us": 30, "msg.push_us": 20, "msg.push_nats_us": 10,
		"dlv.edge_us": 10, "dlv.nats_us": 20, "dlv.fanout_us": 1, "dlv.conversations_us": 0, "dlv.store_us": 0,
		"dlv.persist_us": 0, "dlv.events_us": 0, "dlv.push_us": 2, "dlv.generator_us": 5,
		"rest.nats_cores": 0.01, "rest.store_cores": 0.01, "rest.edge_cores": 0.01, "rest.worker_cores": 0.001,
		"conn.kib": 16, "conn.core_pct_per_10k": 1, "conn.max_per_process": 20000,
		"js.msgs_bytes_per_msg": 500, "js.events_bytes_per_msg": 500, "store.bytes_per_msg": 1000,
		"nats.rss_mib": 64, "nats.kib_per_msgps": 100, "edge.rss_mib": 64,
	} {
		set(k, v)
	}
	return f
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// arithmeticLoad is the load of TestPlanArithmetic, natter's default
// roles.
var arithmeticLoad = Load{
	Users: 864_000, Online: 0.5, MsgsPerUserDay: 100, GroupSize: 11, PeakFactor: 2, Devices: 1,
	ConvsPerUser: 10, HotTier: 1000, RetentionDays: 10, EventsDays: 1,
	ReplicaCores: 1, EdgeMemGiB: 1, NATSCores: 4, Utilisation: 0.5, MinReplicas: 2,
}

// TestPlanArithmetic checks every figure of a plan with natter's default
// roles against the same plan worked out by hand.
func TestPlanArithmetic(t *testing.T) {
	p, err := testFigures().Plan(arithmeticLoad)
	if err != nil {
		t.Fatal(err)
	}
	// 864,000 users x 100 a day = 1,000 msg/s, x2 at the peak; 10
	// members, half online: 5 deliveries a message, 4 beyond the first.
	near(t, "mean", p.MeanMsgPerSec, 1000)
	near(t, "peak", p.PeakMsgPerSec, 2000)
	near(t, "deliveries", p.PeakDeliveriesPerSec, 10_000)
	near(t, "connections", p.Connections, 432_000)

	roles := map[string]Role{}
	for _, r := range p.Roles {
		roles[r.Name] = r
	}
	// Edge: 2,000 x 100 us + 8,000 x 10 us + 432,000 conns x 1% / 10,000.
	e := roles["edge"]
	near(t, "edge cores", e.Cores, 0.2+0.08+0.432)
	// Memory: (1,024 - 64) MiB x 1,024 x 0.5 / 16 KiB = 30,720 conns; open
	// files: 20,000 x 0.5 = 10,000: 432,000 / 10,000 -> 44 edges.
	if e.Replicas != 44 || !strings.Contains(e.Why, "open files") {
		t.Errorf("edges = %d (%s), want 44 by open files", e.Replicas, e.Why)
	}
	// Persist: 2,000 x 600 us = 1.2 cores over 0.5 a replica -> 3.
	if r := roles["persist"]; r.Replicas != 3 || r.Why != "CPU" {
		t.Errorf("persist = %d (%s), want 3 by CPU", r.Replicas, r.Why)
	}
	near(t, "persist cores", roles["persist"].Cores, 1.2)
	near(t, "persist per core", roles["persist"].PerCore, 1e6/600)
	// Fanout: 2,000 x 50 us + 8,000 x 1 us.
	near(t, "fanout cores", roles["fanout"].Cores, 0.108)
	near(t, "fanout per core", roles["fanout"].PerCore, 1e6)
	for _, name := range []string{"fanout", "conversations", "ingest", "api", "thumbs", "attachgc"} {
		if r := roles[name]; r.Replicas != 2 || r.Why != "minimum" {
			t.Errorf("%s = %d (%s), want the minimum 2", name, r.Replicas, r.Why)
		}
	}
	// Push without a provider runs but does not consume: no CPU budgeted.
	if r := roles["push"]; r.Replicas != 2 || r.Cores != 0 || r.PerCore != 0 || !strings.Contains(r.Why, "not consuming") {
		t.Errorf("push = %+v, want the minimum 2, not consuming", r)
	}
	if _, ok := roles["events"]; ok || len(p.Roles) != 9 {
		t.Errorf("%d roles (events: %v), want the edges and natter's 8 default worker roles", len(p.Roles), ok)
	}

	// NATS: (2,000 x 300 + 8,000 x 20) us over 3 nodes; the hot tier is
	// min(86.4M a day x 10 days, 785,454.5 conversations x 1,000) x 500
	// bytes; no message events in EVENTS.
	near(t, "nats cores per node", p.NATS.CoresPerNode, 0.76/3)
	convs := 864_000.0 * 10 / 11
	near(t, "nats storage", p.NATS.StorageGiB, convs*1000*500/(1<<30))
	near(t, "nats memory", p.NATS.MemoryGiB, (64+2000*100.0/1024)/1024)
	near(t, "nats appends", p.NATS.AppendsPerSec, 2000)
	near(t, "hot days", p.NATS.HotDays, convs*1000/86.4e6)
	if p.NATS.Nodes != 3 || len(p.Warnings) != 0 {
		t.Errorf("nats nodes %d, warnings %q", p.NATS.Nodes, p.Warnings)
	}

	// MongoDB: 86.4M a day x 10 days x 1,000 bytes; 3 persist replicas x 2
	// batches in flight x 50 a second = 300 inserts/s.
	near(t, "mongo storage", p.Mongo.StorageGiB, 86.4e6*10*1000/(1<<30))
	near(t, "mongo docs", p.Mongo.DocsPerSec, 2000)
	near(t, "mongo writes", p.Mongo.WritesPerSec, 300)
	near(t, "mongo MB/s", p.Mongo.MBPerSec, 2)
	near(t, "store cores", p.Mongo.Cores, 0.2)
}

// TestPlanOptIn checks that the events role and push providers are
// budgeted when asked, each apart, and only then: their roles' CPU, the
// NATS nodes' share, the EVENTS append and bytes.
func TestPlanOptIn(t *testing.T) {
	convs := 864_000.0 * 10 / 11
	for _, tc := range []struct {
		events, push bool
		// natsUs is the NATS nodes' CPU per message (300 us with the
		// default roles, +30 for the events role, +10 for push).
		natsUs float64
	}{
		{false, false, 300},
		{true, false, 330},
		{false, true, 310},
		{true, true, 340},
	} {
		l := arithmeticLoad
		l.EventsRole, l.PushProviders = tc.events, tc.push
		p, err := testFigures().Plan(l)
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]Role{}
		for _, r := range p.Roles {
			roles[r.Name] = r
		}
		what := fmt.Sprintf("events role %v, push providers %v", tc.events, tc.push)
		// 2,000 msg/s x natsUs + 8,000 deliveries/s x 20 us, over 3 nodes.
		near(t, what+": nats cores per node", p.NATS.CoresPerNode, (2000*tc.natsUs+8000*20)/1e6/3)
		storage, appends := convs*1000*500, 2000.0
		if tc.events {
			storage += 86.4e6 * 1 * 500 // a day's messages x 1 day x 500 bytes
			appends += 2000
		}
		near(t, what+": nats storage", p.NATS.StorageGiB, storage/(1<<30))
		near(t, what+": nats appends", p.NATS.AppendsPerSec, appends)
		ev, ok := roles["events"]
		if ok != tc.events || len(p.Roles) != 9+map[bool]int{true: 1}[tc.events] {
			t.Errorf("%s: events role listed %v, %d roles", what, ok, len(p.Roles))
		}
		if tc.events {
			// 2,000 x 50 us.
			near(t, what+": events cores", ev.Cores, 0.1)
			near(t, what+": events per core", ev.PerCore, 1e6/50)
		}
		// Push: 2,000 x 20 us + 8,000 x 2 us, or nothing.
		push := roles["push"]
		if tc.push {
			near(t, what+": push cores", push.Cores, 0.056)
			if push.Why != "minimum" {
				t.Errorf("%s: push decided by %q", what, push.Why)
			}
		} else if push.Cores != 0 || !strings.Contains(push.Why, "not consuming") {
			t.Errorf("%s: push = %+v, want not consuming", what, push)
		}
		if push.Replicas != 2 {
			t.Errorf("%s: push replicas %d", what, push.Replicas)
		}
	}
}

// TestPlanDefaults checks that a load with only the required fields gets
// the documented defaults, and that a hot NATS node is warned about.
func TestPlanDefaults(t *testing.T) {
	p, err := testFigures().Plan(Load{Users: 100_000_000, Online: 0.1, MsgsPerUserDay: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := Load{Users: 100_000_000, Online: 0.1, MsgsPerUserDay: 100, GroupSize: 2, PeakFactor: 3, Devices: 1,
		ConvsPerUser: 20, HotTier: 10_000, RetentionDays: 365, EventsDays: 7, ReplicaCores: 2, EdgeMemGiB: 4,
		NATSCores: 4, Utilisation: 0.6, MinReplicas: 2}
	if p.Load != want {
		t.Errorf("load with defaults\n%+v, want\n%+v", p.Load, want)
	}
	// 347,222 msg/s at the peak x 300 us / 3 nodes = 34.7 cores a node.
	// A node of 4 cores at 60% carries 2.4 x 3 nodes x 1e6 / 300 us.
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "MSGS is one stream") || !strings.Contains(p.Warnings[0], "~24,000 1:1 msg/s") {
		t.Errorf("warnings %q, want the one about the MSGS leader", p.Warnings)
	}
}

func TestPlanBadLoad(t *testing.T) {
	for _, tc := range []struct {
		field string
		l     Load
	}{
		{"Users", Load{Users: 0, Online: 0.1, MsgsPerUserDay: 1}},
		{"Online", Load{Users: 10, Online: 1.5, MsgsPerUserDay: 1}},
		{"Online", Load{Users: 10, Online: -0.1, MsgsPerUserDay: 1}},
		{"MsgsPerUserDay", Load{Users: 10, Online: 0.5, MsgsPerUserDay: math.NaN()}},
		{"GroupSize", Load{Users: 10, Online: 0.5, MsgsPerUserDay: 1, GroupSize: 1}},
		{"PeakFactor", Load{Users: 10, Online: 0.5, MsgsPerUserDay: 1, PeakFactor: 0.5}},
		{"Utilisation", Load{Users: 10, Online: 0.5, MsgsPerUserDay: 1, Utilisation: 2}},
		{"MinReplicas", Load{Users: 10, Online: 0.5, MsgsPerUserDay: 1, MinReplicas: -1}},
	} {
		_, err := testFigures().Plan(tc.l)
		if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), tc.field+" ") {
			t.Errorf("%+v: %v, want ErrLoad naming %s", tc.l, err, tc.field)
		}
	}
}

// TestClusterRate checks the prediction for a local cluster by hand: the
// idle processes' cores off the host's, over every part's CPU a message.
func TestClusterRate(t *testing.T) {
	f := testFigures()
	top := Topology{NATSNodes: 3, Edges: 2, WorkerReplicas: 2}
	// natter's 8 default roles: 3 x 0.01 + 0.01 + 2 x 0.01 + 16 x 0.001
	// = 0.076 cores at rest; 1,150 us a message (edge 100, nats 300,
	// store 100, persist 600, fanout 50), 1,250 with the generator.
	p := f.ClusterRate(top, 2, true)
	near(t, "rest", p.RestCores, 0.076)
	near(t, "us", p.UsPerMsg, 1250)
	near(t, "rate", p.MsgPerSec, (2-0.076)*1e6/1250)
	near(t, "rate without generator", f.ClusterRate(top, 2, false).MsgPerSec, (2-0.076)*1e6/1150)
	// The events role: 2 processes more, 50 + 30 us a message; push with
	// a provider: 20 + 10 us.
	ev := top
	ev.EventsRole = true
	near(t, "rest with the events role", f.ClusterRate(ev, 2, true).RestCores, 0.078)
	near(t, "us with the events role", f.ClusterRate(ev, 2, true).UsPerMsg, 1330)
	push := top
	push.PushProviders = true
	near(t, "rest with push providers", f.ClusterRate(push, 2, true).RestCores, 0.076)
	near(t, "us with push providers", f.ClusterRate(push, 2, true).UsPerMsg, 1280)
	top.Roles = 3
	near(t, "rest of 3 roles", f.ClusterRate(top, 2, true).RestCores, 0.03+0.01+0.02+6*0.001)
}
