package tracing

import "time"

// DefaultSampleRatio is the share of sends traced when Config.SampleRatio
// is zero.
const DefaultSampleRatio = 0.01

// Config configures [Setup].
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://collector:4318/v1/traces. Empty, and Env false, means tracing
	// is off.
	Endpoint string
	// Env says the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT variable (and the exporter's other
	// OTEL_EXPORTER_OTLP_* variables) configure the exporter; Endpoint,
	// when set, wins over them. False (the zero value) ignores them.
	Env bool
	// SampleRatio is the share of sends (0 < r <= 1) whose journey is
	// traced, decided at the edge; workers and deliveries follow that
	// decision. Zero means [DefaultSampleRatio].
	SampleRatio float64
	// Service is the resource's service.name. Empty means "natter".
	Service string
	// Instance is the resource's service.instance.id and the edge id
	// written into sampled log entries ([OriginHeader]). Empty means none.
	Instance string
	// Version is the resource's service.version. Empty means none.
	Version string
	// ExportTimeout bounds one export. Zero means 10s.
	ExportTimeout time.Duration
}

func (c Config) enabled() bool { return c.Endpoint != "" || c.Env }

func (c Config) withDefaults() Config {
	if c.SampleRatio <= 0 {
		c.SampleRatio = DefaultSampleRatio
	}
	if c.SampleRatio > 1 {
		c.SampleRatio = 1
	}
	if c.Service == "" {
		c.Service = "natter"
	}
	if c.ExportTimeout <= 0 {
		c.ExportTimeout = 10 * time.Second
	}
	return c
}
