package edge

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections   prometheus.Gauge
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	pushes        prometheus.Counter
	slowConsumers prometheus.Counter
	badDeliveries prometheus.Counter
	sends         *prometheus.CounterVec
	// sendsOK and sendsDup are sends' children of the accepted sends,
	// looked up once (a lookup by label hashes the value every time).
	sendsOK, sendsDup prometheus.Counter
	sendSeconds       prometheus.Histogram
	errors            *prometheus.CounterVec
	// presencePushes and typingPushes count the frames queued to sockets.
	presencePushes prometheus.Counter
	typingPushes   prometheus.Counter
	// readPushes counts the read push frames queued to sockets.
	readPushes prometheus.Counter
	// typingSent counts the typing signals published, one per member.
	typingSent prometheus.Counter
	// convPushes counts the conv frames queued to sockets.
	convPushes prometheus.Counter
	// reactionPushes counts the reaction frames queued to sockets.
	reactionPushes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_edge_connections", Help: "Open client WebSockets."}),
		framesIn:      prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_frames_in_total", Help: "Client frames read."}),
		framesOut:     prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_frames_out_total", Help: "Server frames written."}),
		pushes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_pushes_total", Help: "Message pushes queued to sockets."}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_slow_consumers_total", Help: "Sockets closed because their send queue was full."}),
		badDeliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_bad_deliveries_total", Help: "Delivery messages dropped because their batch or member-list header did not describe their data."}),
		sends:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_edge_sends_total", Help: "Sends by result."}, []string{"result"}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "natter_edge_send_seconds", Help: "Send to durable ack.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		errors:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_edge_errors_total", Help: "Error replies by code."}, []string{"code"}),
		presencePushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_presence_pushes_total", Help: "Presence pushes queued to sockets."}),
		typingPushes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_typing_pushes_total", Help: "Typing pushes queued to sockets."}),
		typingSent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_typing_signals_total", Help: "Typing signals published to members' delivery subjects."}),
		readPushes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_read_pushes_total", Help: "Read pushes (own reads on other devices, receipts) queued to sockets."}),
		convPushes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_conv_pushes_total", Help: "Conversation pushes (conv frames: created, members, renamed) queued to sockets."}),
		reactionPushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "natter_edge_reaction_pushes_total", Help: "Reaction pushes queued to sockets."}),
	}
	m.sendsOK, m.sendsDup = m.sends.WithLabelValues("ok"), m.sends.WithLabelValues("duplicate")
	if reg != nil {
		reg.MustRegister(m.connections, m.framesIn, m.framesOut, m.pushes, m.slowConsumers, m.badDeliveries, m.sends, m.sendSeconds, m.errors,
			m.presencePushes, m.typingPushes, m.typingSent, m.readPushes, m.convPushes, m.reactionPushes)
	}
	return m
}
