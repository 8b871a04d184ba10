// Package infra holds no code: the directory carries natter's deployment
// material for operators (NATS cluster and disaster-recovery configs,
// Kubernetes manifests, MongoDB guide and scripts, an nginx load balancer, a
// container image) and the tests that check each file with a real parser.
// See README.md.
package infra
