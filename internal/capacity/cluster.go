package capacity

import "fmt"

// Topology is a local cluster of natter cluster up: every process on one
// host.
type Topology struct {
	// NATSNodes is the number of nats-server nodes (streams at R3 with 3).
	NATSNodes int
	// Edges is the number of edge processes.
	Edges int
	// WorkerReplicas is the number of processes per worker role.
	WorkerReplicas int
	// Roles is the number of worker roles, one process per role and
	// replica. Zero means natter's default roles (8), and the events role
	// with EventsRole (9).
	Roles int
	// EventsRole and PushProviders are the opt-in consumers on MSGS, as
	// in [Load]: the events role runs; the push role has a provider.
	EventsRole, PushProviders bool
}

// defaultRoles is the number of natter's default worker roles
// (node.AllRoles: conversations, persist, fanout, ingest, api, thumbs,
// attachgc, push).
const defaultRoles = 8

// Prediction is the message rate a topology should sustain on a host.
type Prediction struct {
	// MsgPerSec is the 1:1 message rate (sent, delivered, archived).
	MsgPerSec float64
	// RestCores is the CPU the idle processes take.
	RestCores float64
	// UsPerMsg is the CPU per message of every part (and of the load
	// generator, when counted).
	UsPerMsg float64
	// Why says how MsgPerSec was reached.
	Why string
}

// ClusterRate predicts the 1:1 message rate a topology sustains with every
// process on one host of hostCores cores: the cores left after the idle
// processes' own work, over the CPU per message of every part. With
// generator set it counts the load generator's clients (natter bench on
// the same host) too.
func (f Figures) ClusterRate(t Topology, hostCores float64, generator bool) Prediction {
	roles := t.Roles
	if roles == 0 {
		roles = defaultRoles
		if t.EventsRole {
			roles++
		}
	}
	rest := float64(t.NATSNodes)*f.v("rest.nats_cores") + f.v("rest.store_cores") +
		float64(t.Edges)*f.v("rest.edge_cores") + float64(t.WorkerReplicas*roles)*f.v("rest.worker_cores")
	us := f.msgUs(Load{EventsRole: t.EventsRole, PushProviders: t.PushProviders})
	if generator {
		us += f.v("msg.generator_us")
	}
	rate := (hostCores - rest) * 1e6 / us
	return Prediction{
		MsgPerSec: rate, RestCores: rest, UsPerMsg: us,
		Why: fmt.Sprintf("(%.0f cores - %.2f at rest) x 1e6 / %.0f us/msg", hostCores, rest, us),
	}
}

// msgUs is the server's CPU per 1:1 message, every part, with the opt-in
// consumers on MSGS of l.
func (f Figures) msgUs(l Load) float64 {
	var s float64
	for _, k := range msgParts {
		s += f.v("msg." + k + "_us")
	}
	if l.EventsRole {
		s += f.v("msg.events_us") + f.v("msg.events_nats_us")
	}
	if l.PushProviders {
		s += f.v("msg.push_us") + f.v("msg.push_nats_us")
	}
	return s
}

// msgParts are the server's parts of a message's cost with natter's
// default roles.
var msgParts = []string{"edge", "nats", "store", "persist", "fanout", "conversations", "other"}
