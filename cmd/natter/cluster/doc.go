// Package cluster runs a local multi-process natter topology on loopback:
// nats-server nodes forming a real cluster (natter nats), one
// MongoDB-compatible store process (natter store), worker processes
// (natter worker) and edges (natter edge), each a process of the natter
// binary with its own log under the cluster's directory.
//
// It is what "natter cluster up" starts and what the chaos tests drive:
// every process can be signalled, killed and started again with the same
// arguments, ports and data, so a restarted NATS node rejoins its cluster
// under the same name.
package cluster
