// Package natsauth is the one place where the NATS permissions of natter's
// tiers are written: what an edge, a worker, an internal service and an
// operator (admin) may publish and subscribe to, as allow lists (anything
// not listed is denied). It renders them as a nats-server configuration
// (one account, NATTER, with JetStream; one nkey user per tier; TLS),
// converts them for an embedded server, and makes the nkeys of a local
// cluster. infra/nats/permissions.conf is checked against it by a test.
package natsauth
