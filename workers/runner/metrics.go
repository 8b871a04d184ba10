package runner

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a Runner's counters since New, for micro service stats and
// health checks.
type Stats struct {
	Role string `json:"role"`
	// Processed counts messages handed to Handle.
	Processed uint64 `json:"processed"`
	// Acked counts messages acknowledged.
	Acked uint64 `json:"acked"`
	// Retried counts messages handed back for redelivery.
	Retried uint64 `json:"retried"`
	// Poisoned counts messages dead-lettered: Poison results and Retries on
	// the last delivery.
	Poisoned uint64 `json:"poisoned"`
	// InFlight is the number of messages in Handle calls or being settled now.
	InFlight int `json:"in_flight"`
	// Queued is the number of received messages waiting for a Handle call.
	Queued int `json:"queued"`
	// Consuming says whether the Runner is attached to its consumer and
	// pulling. It is false before Start, after Stop, and while the Runner
	// looks for a consumer it lost (deleted, or its pull ended by itself).
	Consuming bool `json:"consuming"`
	// ConsumeLost counts how often the consume loop ended before Stop.
	ConsumeLost uint64 `json:"consume_lost"`
	// LastError describes the latest failure: a Retry or Poison result, a
	// panic, a failed ack or dead-letter publish, a consume error.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened; zero if never.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Metric outcome labels.
const (
	labelAck       = "ack"
	labelRetry     = "retry"
	labelPoison    = "poison"
	labelExhausted = "exhausted" // Retry on the last delivery, dead-lettered
)

// counters back Stats and, when a Registerer is set, the metrics.
type counters struct {
	processed, acked, retried, poisoned atomic.Uint64
	consumeLost                         atomic.Uint64
	inFlight                            atomic.Int64
	consuming                           atomic.Bool

	mu          sync.Mutex
	lastErr     string
	lastErrTime time.Time

	// Nil without a Registerer.
	outcomes map[string]prometheus.Counter
	handle   prometheus.Observer
	batch    prometheus.Observer
	gauge    prometheus.Gauge
	attached prometheus.Gauge
	lost     prometheus.Counter
}

// setConsuming records whether the Runner is consuming; the gauge counts
// the consuming Runners of the role in one registry.
func (c *counters) setConsuming(on bool) {
	if c.consuming.Swap(on) == on || c.attached == nil {
		return
	}
	if on {
		c.attached.Inc()
	} else {
		c.attached.Dec()
	}
}

// consumeEnded counts a consume loop that ended before Stop.
func (c *counters) consumeEnded() {
	c.consumeLost.Add(1)
	if c.lost != nil {
		c.lost.Inc()
	}
}

func (c *counters) failed(msg string) {
	c.mu.Lock()
	c.lastErr, c.lastErrTime = msg, time.Now()
	c.mu.Unlock()
}

func (c *counters) outcome(label string) {
	switch label {
	case labelAck:
		c.acked.Add(1)
	case labelRetry:
		c.retried.Add(1)
	case labelPoison, labelExhausted:
		c.poisoned.Add(1)
	}
	if c.outcomes != nil {
		c.outcomes[label].Inc()
	}
}

func (c *counters) addInFlight(n int) {
	c.inFlight.Add(int64(n))
	if c.gauge != nil {
		c.gauge.Add(float64(n))
	}
}

func (c *counters) observe(n int, d time.Duration) {
	c.processed.Add(uint64(n))
	if c.handle != nil {
		c.handle.Observe(d.Seconds())
		c.batch.Observe(float64(n))
	}
}

// register creates the role's metrics in reg. Vectors another Runner already
// registered in reg are shared.
func (c *counters) register(reg prometheus.Registerer, role string) error {
	messages, err := registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "natter_worker_messages_total",
		Help: "Messages a worker role settled, by outcome (ack, retry, poison, exhausted).",
	}, []string{"role", "outcome"}))
	if err != nil {
		return err
	}
	handle, err := registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "natter_worker_handle_seconds",
		Help:    "Duration of one Handle call of a worker role.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"role"}))
	if err != nil {
		return err
	}
	batch, err := registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "natter_worker_batch_size",
		Help:    "Messages per Handle call of a worker role.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1,024: persist's batches
	}, []string{"role"}))
	if err != nil {
		return err
	}
	inFlight, err := registerOnce(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "natter_worker_in_flight",
		Help: "Messages a worker role is handling or settling now.",
	}, []string{"role"}))
	if err != nil {
		return err
	}
	consuming, err := registerOnce(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "natter_worker_consuming",
		Help: "Runners of a worker role in this process that are attached to their durable consumer and pulling; 0 while the consumer is missing.",
	}, []string{"role"}))
	if err != nil {
		return err
	}
	lost, err := registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "natter_worker_consume_lost_total",
		Help: "Times the consume loop of a worker role ended before Stop (consumer deleted, pull ended by the server); the runner then looks the consumer up again.",
	}, []string{"role"}))
	if err != nil {
		return err
	}
	c.outcomes = make(map[string]prometheus.Counter)
	for _, o := range []string{labelAck, labelRetry, labelPoison, labelExhausted} {
		c.outcomes[o] = messages.WithLabelValues(role, o)
	}
	c.handle = handle.WithLabelValues(role)
	c.batch = batch.WithLabelValues(role)
	c.gauge = inFlight.WithLabelValues(role)
	c.attached = consuming.WithLabelValues(role)
	c.lost = lost.WithLabelValues(role)
	return nil
}

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
	return c, fmt.Errorf("runner: register metrics: %w", err)
}
