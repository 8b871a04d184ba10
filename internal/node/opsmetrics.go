package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/jetstream/subjects"
)

// roleConsumer is a worker role's durable consumer.
type roleConsumer struct{ role, stream, consumer string }

// roleConsumers are the durable consumers of the worker roles, as
// startRoles creates their runners.
var roleConsumers = []roleConsumer{
	{RolePersist, subjects.StreamMsgs, subjects.ConsumerPersist},
	{RoleFanout, subjects.StreamMsgs, subjects.ConsumerFanout},
	{RoleEvents, subjects.StreamMsgs, subjects.ConsumerEvents},
	{RoleIngest, subjects.StreamIngest, subjects.ConsumerIngest},
	{RoleThumbs, subjects.StreamAttach, subjects.ConsumerThumbs},
}

// opsStreams are the streams whose size and head the collector exports.
var opsStreams = []string{subjects.StreamMsgs, subjects.StreamDLQ, subjects.StreamIngest, subjects.StreamEvents}

// scrapeTimeout bounds the JetStream and store requests of one scrape.
const scrapeTimeout = 3 * time.Second

var (
	descCheckUp = prometheus.NewDesc("natter_check_up",
		"1 if the dependency answered this scrape's check (nats: connected; jetstream: account info; store: MongoDB primary ping), else 0.", []string{"check"}, nil)
	descCheckSeconds = prometheus.NewDesc("natter_check_seconds",
		"Duration of this scrape's check of a dependency.", []string{"check"}, nil)
	descConsumerPending = prometheus.NewDesc("natter_consumer_pending",
		"Messages of a worker role's durable consumer not yet delivered to any replica (JetStream num_pending).", []string{"role", "stream", "consumer"}, nil)
	descConsumerAckPending = prometheus.NewDesc("natter_consumer_ack_pending",
		"Messages delivered to a worker role and not yet acknowledged (JetStream num_ack_pending).", []string{"role", "stream", "consumer"}, nil)
	descConsumerRedelivered = prometheus.NewDesc("natter_consumer_redelivered",
		"Messages of a worker role's consumer delivered more than once and not yet acknowledged.", []string{"role", "stream", "consumer"}, nil)
	descConsumerAckFloor = prometheus.NewDesc("natter_consumer_ack_floor",
		"Stream sequence up to which a worker role's consumer has acknowledged every message; it stands still while the role makes no progress.", []string{"role", "stream", "consumer"}, nil)
	descStreamMessages = prometheus.NewDesc("natter_stream_messages",
		"Messages a natter stream holds.", []string{"stream"}, nil)
	descStreamBytes = prometheus.NewDesc("natter_stream_bytes",
		"Bytes a natter stream holds.", []string{"stream"}, nil)
	descStreamLastSeq = prometheus.NewDesc("natter_stream_last_seq",
		"Sequence of a natter stream's newest message.", []string{"stream"}, nil)
	descNATSReconnects = prometheus.NewDesc("natter_nats_reconnects_total",
		"Reconnects of the process's main NATS connection.", nil, nil)
	descTLSNotAfter = prometheus.NewDesc("natter_edge_tls_not_after_seconds",
		"Expiry (Unix seconds) of the TLS certificate the edge serves to new connections; it moves when a rotation is taken.", nil, nil)
)

// opsCollector exports, at each scrape, what the process sees of its
// dependencies: the checks behind /readyz (NATS, JetStream, the store) and,
// in a process that runs worker roles, the state of every role's durable
// consumer and the size of natter's streams, so that consumer lag per role,
// archive lag and dead letters need no NATS exporter. Each scrape costs one
// JetStream request per consumer and stream (a worker) or one account info
// (an edge); all of them within scrapeTimeout.
type opsCollector struct{ n *Node }

func (c opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCheckUp, descCheckSeconds, descConsumerPending, descConsumerAckPending,
		descConsumerRedelivered, descConsumerAckFloor, descStreamMessages, descStreamBytes, descStreamLastSeq, descNATSReconnects, descTLSNotAfter} {
		ch <- d
	}
}

func (c opsCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	check := func(name string, f func(context.Context) error) {
		start := time.Now()
		up := 1.0
		if f(ctx) != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descCheckUp, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(descCheckSeconds, prometheus.GaugeValue, time.Since(start).Seconds(), name)
	}
	check("nats", natsReady(n.nc))
	check("jetstream", func(ctx context.Context) error { _, err := n.js.AccountInfo(ctx); return err })
	if n.store != nil {
		check("store", n.store.Ping)
	}
	ch <- prometheus.MustNewConstMetric(descNATSReconnects, prometheus.CounterValue, float64(n.nc.Stats().Reconnects))
	if crt := n.TLSCertificate(); crt != nil && crt.Leaf != nil {
		ch <- prometheus.MustNewConstMetric(descTLSNotAfter, prometheus.GaugeValue, float64(crt.Leaf.NotAfter.Unix()))
	}
	if n.cfg.Mode == ModeEdge {
		return
	}
	for _, rc := range roleConsumers {
		cons, err := n.js.Consumer(ctx, rc.stream, rc.consumer)
		if err != nil {
			continue // not created yet, or JetStream unreachable: natter_check_up says which
		}
		ci := cons.CachedInfo()
		l := []string{rc.role, rc.stream, rc.consumer}
		ch <- prometheus.MustNewConstMetric(descConsumerPending, prometheus.GaugeValue, float64(ci.NumPending), l...)
		ch <- prometheus.MustNewConstMetric(descConsumerAckPending, prometheus.GaugeValue, float64(ci.NumAckPending), l...)
		ch <- prometheus.MustNewConstMetric(descConsumerRedelivered, prometheus.GaugeValue, float64(ci.NumRedelivered), l...)
		ch <- prometheus.MustNewConstMetric(descConsumerAckFloor, prometheus.GaugeValue, float64(ci.AckFloor.Stream), l...)
	}
	for _, name := range opsStreams {
		s, err := n.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		st := s.CachedInfo().State
		ch <- prometheus.MustNewConstMetric(descStreamMessages, prometheus.GaugeValue, float64(st.Msgs), name)
		ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.GaugeValue, float64(st.Bytes), name)
		ch <- prometheus.MustNewConstMetric(descStreamLastSeq, prometheus.GaugeValue, float64(st.LastSeq), name)
	}
}
