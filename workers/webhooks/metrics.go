package webhooks

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery results, the result label of natter_webhook_deliveries_total.
const (
	// ResultSuccess: the endpoint answered 2xx; the event is acked.
	ResultSuccess = "success"
	// ResultRetry: the attempt failed (transport error, timeout, 3xx, 408,
	// 425, 429, 5xx); the event is tried again after a backoff.
	ResultRetry = "retry"
	// ResultDeadLetter: the attempt failed permanently (another 4xx) or was
	// the last one; the event is dead-lettered.
	ResultDeadLetter = "dead_letter"
)

// metrics of one endpoint; nil fields (no Registerer) are skipped.
type metrics struct {
	results map[string]prometheus.Counter
	latency prometheus.Observer
	age     prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, endpoint string) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		return m, nil
	}
	deliveries, err := registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "natter_webhook_deliveries_total",
		Help: "Webhook deliveries by endpoint and result: success or retry per attempt, dead_letter per event given up on.",
	}, []string{"endpoint", "result"}))
	if err != nil {
		return nil, err
	}
	latency, err := registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "natter_webhook_request_duration_seconds",
		Help:    "Duration of one webhook HTTP request, until the response body is read.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"endpoint"}))
	if err != nil {
		return nil, err
	}
	age, err := registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "natter_webhook_delivery_lag_seconds",
		Help:    "Time from an event's timestamp to its successful delivery to an endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
	}, []string{"endpoint"}))
	if err != nil {
		return nil, err
	}
	m.results = make(map[string]prometheus.Counter)
	for _, r := range []string{ResultSuccess, ResultRetry, ResultDeadLetter} {
		m.results[r] = deliveries.WithLabelValues(endpoint, r)
	}
	m.latency = latency.WithLabelValues(endpoint)
	m.age = age.WithLabelValues(endpoint)
	return m, nil
}

func (m *metrics) result(r string) {
	if m.results != nil {
		m.results[r].Inc()
	}
}

func (m *metrics) request(d time.Duration) {
	if m.latency != nil {
		m.latency.Observe(d.Seconds())
	}
}

func (m *metrics) delivered(tsMillis int64) {
	if m.age != nil && tsMillis > 0 {
		m.age.Observe(time.Since(time.UnixMilli(tsMillis)).Seconds())
	}
}

// registerOnce registers c, or returns the collector of the same
// description already in reg (a restarted Service, several endpoints).
func registerOnce[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("webhooks: register metrics: %w", err)
}
