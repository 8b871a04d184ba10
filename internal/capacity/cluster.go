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
	// replica. Zero means 9 (every role).
	Roles int
}

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
		roles = 9
	}
	rest := float64(t.NATSNodes)*f.v("rest.nats_cores") + f.v("rest.store_cores") +
		float64(t.Edges)*f.v("rest.edge_cores") + float64(t.WorkerReplicas*roles)*f.v("rest.worker_cores")
	us := f.msgUs()
	if generator {
		us += f.v("msg.generator_us")
	}
	rate := (hostCores - rest) * 1e6 / us
	return Prediction{
		MsgPerSec: rate, RestCores: rest, UsPerMsg: us,
		Why: fmt.Sprintf("(%.0f cores - %.2f at rest) x 1e6 / %.0f us/msg", hostCores, rest, us),
	}
}

// msgUs is the server's CPU per 1:1 message, every part.
func (f Figures) msgUs() float64 {
	var s float64
	for _, k := range msgParts {
		s += f.v("msg." + k + "_us")
	}
	return s
}

// msgParts are the server's parts of a message's cost.
var msgParts = []string{"edge", "nats", "store", "persist", "fanout", "events", "conversations", "push", "other"}
