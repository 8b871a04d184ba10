// Package discovery registers natter processes as nats.go micro services and
// lists them, which is how operators see what runs without a registry such
// as Consul or Eureka.
//
// Every process registers: the edge as natter-edge, each worker role as
// natter-<role> (natter-persist, natter-fanout, natter-events,
// natter-ingest; the conversations service and the service API register
// their own endpoints as natter-conversations and natter-api). [Register]
// gives a process that has no request endpoints of its own one status
// endpoint (natter.status.<role>) answering with its live stats, and the
// same stats as the endpoint's data in $SRV.STATS, so `nats micro stats
// natter-persist` shows them too.
//
// [List] asks $SRV.INFO and $SRV.STATS (micro.ControlSubject) once and
// collects the replies of every running instance for a short window: the
// data `nats micro list` and `nats micro stats` show, and what
// `natter services` prints.
package discovery
