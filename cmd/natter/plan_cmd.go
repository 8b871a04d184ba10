package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/natter-im/natter/internal/capacity"
	"github.com/natter-im/natter/internal/cli"
)

const planUsage = `natter plan --users N --online F --msgs-per-user-day M [--group-size G] [flags]
       natter plan --cluster [--host-cores C] [--edges E] [--worker-replicas R]

Sizes a deployment from the per-replica figures measured on one machine
(docs/capacity.md, compiled into this binary): replicas per role, edges, NATS
nodes (CPU, storage, memory) and MongoDB (storage, write rate). With
--cluster it predicts instead the 1:1 message rate that "natter bench
persist" sustains against "natter cluster up" with every process on this
host.

The roles are natter's defaults unless told: --events-role budgets the
events role (not a default role: it copies every message into EVENTS), and
--push-providers the push role with a provider configured (APNs, FCM or Web
Push; without one the role does not consume). Pass each when the deployment
runs it.`

// runPlan implements "natter plan".
func runPlan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter plan", planUsage, stdout)
	var l capacity.Load
	var clusterMode, asJSON, noGen bool
	var hostCores float64
	var top capacity.Topology
	pos := cli.Positive[float64]()
	fs.Float(&l.Users, "users", "NATTER_PLAN_USERS", 0, "registered users; required", cli.Min(0.0))
	fs.Float(&l.Online, "online", "NATTER_PLAN_ONLINE", 0, "share of users online at the peak, more than 0 and at most 1; required", cli.Between(0.0, 1.0))
	fs.Float(&l.MsgsPerUserDay, "msgs-per-user-day", "NATTER_PLAN_MSGS_PER_USER_DAY", 0, "messages a user sends a day; required", cli.Min(0.0))
	fs.Float(&l.GroupSize, "group-size", "NATTER_PLAN_GROUP_SIZE", 2, "members of the conversation an average message goes to, the sender included (2 = direct)", cli.Min(2.0))
	fs.Float(&l.PeakFactor, "peak-factor", "NATTER_PLAN_PEAK_FACTOR", 3, "peak message rate over the day's mean", cli.Min(1.0))
	fs.Float(&l.Devices, "devices", "NATTER_PLAN_DEVICES", 1, "connections per online user", cli.Min(1.0))
	fs.Float(&l.ConvsPerUser, "convs-per-user", "NATTER_PLAN_CONVS_PER_USER", 20, "conversations a user is in (the hot tier keeps --hot-tier messages of each)", cli.Min(1.0))
	fs.Float(&l.HotTier, "hot-tier", "NATTER_PLAN_HOT_TIER", 10000, "messages per conversation the MSGS stream keeps (natter's --hot-tier)", cli.Min(1.0))
	fs.Float(&l.RetentionDays, "retention-days", "NATTER_PLAN_RETENTION_DAYS", 365, "days the archive keeps messages (and the horizon of the hot tier's growth)", pos)
	fs.Float(&l.EventsDays, "events-days", "NATTER_PLAN_EVENTS_DAYS", 7, "days the EVENTS stream keeps an event (with --events-role: the message events' bytes)", pos)
	fs.Bool(&l.EventsRole, "events-role", "NATTER_PLAN_EVENTS_ROLE", false, "the deployment runs the events role (natter worker --roles ...,events): its replicas, its consumer on MSGS and the copies in EVENTS (off: natter's default roles)")
	fs.Bool(&l.PushProviders, "push-providers", "NATTER_PLAN_PUSH_PROVIDERS", false, "the push role has a provider (--push-apns-key-file, --push-fcm-credentials-file or --push-webpush-vapid-key-file): it reads every message (off: natter's default, the role does not consume)")
	fs.Float(&l.ReplicaCores, "replica-cores", "NATTER_PLAN_REPLICA_CORES", 2, "cores of one edge or worker replica", pos)
	fs.Float(&l.EdgeMemGiB, "edge-mem-gib", "NATTER_PLAN_EDGE_MEM_GIB", 4, "memory of one edge, GiB", pos)
	fs.Float(&l.NATSCores, "nats-cores", "NATTER_PLAN_NATS_CORES", 4, "cores of one NATS node", pos)
	fs.Float(&l.Utilisation, "utilisation", "NATTER_PLAN_UTILISATION", 0.6, "share of a replica's cores and an edge's memory filled at the peak", cli.Between(0.01, 1.0))
	fs.Int(&l.MinReplicas, "min-replicas", "NATTER_PLAN_MIN_REPLICAS", 2, "fewest processes of each role and of edges", cli.Min(1))
	fs.Bool(&clusterMode, "cluster", "NATTER_PLAN_CLUSTER", false, "predict the message rate of a local cluster (natter cluster up) on this host instead")
	fs.Float(&hostCores, "host-cores", "NATTER_PLAN_HOST_CORES", float64(runtime.NumCPU()), "with --cluster: cores of the host (default: this machine's)", pos)
	fs.Int(&top.Edges, "edges", "NATTER_PLAN_EDGES", 2, "with --cluster: edge processes (natter cluster up --edges)", cli.Min(1))
	fs.Int(&top.WorkerReplicas, "worker-replicas", "NATTER_PLAN_WORKER_REPLICAS", 2, "with --cluster: processes per worker role (natter cluster up --worker-replicas)", cli.Min(1))
	fs.Bool(&noGen, "no-generator", "NATTER_PLAN_NO_GENERATOR", false, "with --cluster: leave out the load generator's clients (natter bench on the same host)")
	fs.Bool(&asJSON, "json", "NATTER_PLAN_JSON", false, "print the plan as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	figs := capacity.Default()
	if clusterMode {
		top.NATSNodes = 3
		top.EventsRole, top.PushProviders = l.EventsRole, l.PushProviders
		p := figs.ClusterRate(top, hostCores, !noGen)
		if asJSON {
			return writeJSON(stdout, struct {
				Topology   capacity.Topology
				HostCores  float64
				Prediction capacity.Prediction
			}{top, hostCores, p})
		}
		fmt.Fprintf(stdout, "local cluster: 3 NATS nodes (R3), a store, %d edges, %d processes per worker role; %s; on %v cores\n", top.Edges, top.WorkerReplicas, rolesSaid(l), hostCores)
		fmt.Fprintf(stdout, "predicted: %.0f msg/s (1:1, sent, delivered and archived) = %s\n\n", p.MsgPerSec, p.Why)
		printFigures(stdout, figs, "msg.", "rest.")
		return nil
	}
	for _, req := range []struct {
		name string
		v    float64
	}{{"users", l.Users}, {"online", l.Online}, {"msgs-per-user-day", l.MsgsPerUserDay}} {
		if req.v == 0 {
			return usageError{fmt.Errorf("%s: required, more than 0 (see natter plan --help)", fs.Setting(req.name))}
		}
	}
	if l.Users < 1 {
		return usageError{fmt.Errorf("%s: %v is out of range: want 1 or more", fs.Setting("users"), l.Users)}
	}
	p, err := figs.Plan(l)
	var le *capacity.LoadError
	if errors.As(err, &le) {
		return usageError{fmt.Errorf("%s: %v is out of range: want %s", fs.Setting(planFlags[le.Field]), le.Value, le.Want)}
	}
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Plan    capacity.Plan
			Figures []capacity.Figure
		}{p, figs.Sorted()})
	}
	printPlan(stdout, p)
	fmt.Fprintln(stdout)
	printFigures(stdout, figs, "")
	return nil
}

// rolesSaid says which roles a plan budgets: natter's defaults and the
// opt-in consumers on MSGS.
func rolesSaid(l capacity.Load) string {
	s := "natter's default roles"
	if l.EventsRole {
		s += " and the events role"
	}
	if l.PushProviders {
		s += ", push with a provider"
	} else {
		s += ", push without a provider (not consuming)"
	}
	return s
}

// planFlags are the flags of capacity.Load's fields.
var planFlags = map[string]string{
	"Users": "users", "Online": "online", "MsgsPerUserDay": "msgs-per-user-day", "GroupSize": "group-size",
	"PeakFactor": "peak-factor", "Devices": "devices", "ConvsPerUser": "convs-per-user", "HotTier": "hot-tier",
	"RetentionDays": "retention-days", "EventsDays": "events-days", "ReplicaCores": "replica-cores",
	"EdgeMemGiB": "edge-mem-gib", "NATSCores": "nats-cores", "Utilisation": "utilisation", "MinReplicas": "min-replicas",
	"EventsRole": "events-role", "PushProviders": "push-providers",
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printPlan(w io.Writer, p capacity.Plan) {
	l := p.Load
	fmt.Fprintf(w, "load: %s users, %.0f%% online (%s connections), %g msgs/user/day, groups of %g, peak x%g\n",
		commas(l.Users), l.Online*100, commas(p.Connections), l.MsgsPerUserDay, l.GroupSize, l.PeakFactor)
	fmt.Fprintf(w, "      %s msg/s mean, %s msg/s peak, %s deliveries/s peak\n", commas(p.MeanMsgPerSec), commas(p.PeakMsgPerSec), commas(p.PeakDeliveriesPerSec))
	fmt.Fprintf(w, "      replicas of %g cores filled to %.0f%% at the peak; edges of %g GiB; %s\n\n", l.ReplicaCores, l.Utilisation*100, l.EdgeMemGiB, rolesSaid(l))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "role\treplicas\tcores at peak\tper core\tdecided by")
	for _, r := range p.Roles {
		per := "-"
		if r.PerCore > 0 {
			per = commas(r.PerCore) + " " + r.PerCoreUnit
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\n", r.Name, r.Replicas, r.Cores, per, r.Why)
	}
	_ = tw.Flush()
	n := p.NATS
	fmt.Fprintf(w, "\nNATS:    %d nodes (streams at R3); per node at the peak: %.2f cores, %s GiB memory, %s GiB JetStream storage (the hot tier holds %s days); %s stream appends/s\n",
		n.Nodes, n.CoresPerNode, gib(n.MemoryGiB), gib(n.StorageGiB), commas(n.HotDays), commas(n.AppendsPerSec))
	m := p.Mongo
	fmt.Fprintf(w, "MongoDB: %s GiB after %g days; at the peak %s documents/s in %s insert commands/s (write IOPS before the engine's grouping), %.1f MB/s; embedded store's CPU %.2f cores\n",
		gib(m.StorageGiB), l.RetentionDays, commas(m.DocsPerSec), commas(m.WritesPerSec), m.MBPerSec, m.Cores)
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// printFigures prints the compiled figures whose keys start with one of
// prefixes (none: all), with their sources.
func printFigures(w io.Writer, figs capacity.Figures, prefixes ...string) {
	fmt.Fprintln(w, "figures used (docs/capacity.md; measured on 2 cores, Intel Xeon, KVM):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range figs.Sorted() {
		ok := len(prefixes) == 0
		for _, pre := range prefixes {
			ok = ok || strings.HasPrefix(f.Key, pre)
		}
		if ok {
			fmt.Fprintf(tw, "  %s\t%g\t%s\t%s\n", f.Key, f.Value, f.Unit, f.Source)
		}
	}
	_ = tw.Flush()
}

// gib formats a size in GiB: one decimal below 100, else whole with
// thousands separators.
func gib(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return commas(v)
}

// commas formats n rounded, with thousands separators.
func commas(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
