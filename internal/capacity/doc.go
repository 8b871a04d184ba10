// Package capacity is natter's capacity model: the per-replica figures
// measured on one machine (docs/capacity.md, compiled in as [Default]) and
// the arithmetic that turns a load (users, online share, messages per user
// per day, group size) into replicas per role, edges, NATS nodes and
// MongoDB sizing ([Figures.Plan]), or a local cluster's topology into the
// message rate it should sustain ([Figures.ClusterRate]). "natter plan"
// prints both.
package capacity
