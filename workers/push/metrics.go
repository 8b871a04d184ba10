package push

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sends   *prometheus.CounterVec   // provider, result
	seconds *prometheus.HistogramVec // provider
	skipped *prometheus.CounterVec   // reason
	// providers is how many providers the role has: 0 means it does not
	// consume (Handler.Consumes).
	providers prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_push_sends_total",
			Help: "Notification sends by provider and result (ok, unregistered, rejected, retry, failed)."}, []string{"provider", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "natter_push_send_seconds",
			Help: "Time of one notification send, retries included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"provider"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "natter_push_skipped_total",
			Help: "Devices not pushed to, by reason (online, muted, old, provider)."}, []string{"reason"}),
		providers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "natter_push_providers",
			Help: "Push providers configured in this process; 0: the push role does not consume the PUSH consumer."}),
	}
	if reg != nil {
		m.sends = register(reg, m.sends)
		m.seconds = register(reg, m.seconds)
		m.skipped = register(reg, m.skipped)
		m.providers = register(reg, m.providers)
	}
	return m
}

// register registers c, or returns the collector registered before (a
// second handler in one process shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
	}
	return c
}
