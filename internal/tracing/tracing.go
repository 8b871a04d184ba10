package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Header is the NATS header carrying the W3C trace context of a sampled log
// entry and of the delivery messages that carry it.
const Header = "traceparent"

// OriginHeader is the NATS header naming the edge that appended a sampled
// log entry (Config.Instance of its process). Entries that were not
// sampled carry neither header.
const OriginHeader = "Natter-Origin"

// ErrSetup is returned by [Setup] when the exporter cannot be made.
var ErrSetup = errors.New("tracing: setup")

// scope is the instrumentation scope of natter's spans.
const scope = "github.com/natter-im/natter"

// state is the installed tracer; nil while tracing is off.
type state struct {
	tracer trace.Tracer
	origin string
	ratio  float64 // of sends sampled, 0 < ratio <= 1
	prop   propagation.TraceContext
}

var cur atomic.Pointer[state]

// Enabled reports whether tracing is on in this process.
func Enabled() bool { return cur.Load() != nil }

// Setup turns tracing on with an OTLP/HTTP exporter (batched) when cfg names
// an endpoint, and returns the function that flushes the spans not yet
// exported and turns tracing off again. Without an endpoint it does nothing
// and returns a no-op. A second Setup replaces the first one's tracer.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if !cfg.enabled() {
		return func(context.Context) error { return nil }, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(cfg.ExportTimeout)}
	if cfg.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: exporter: %w", ErrSetup, err)
	}
	log.Info("tracing on", "endpoint", cfg.Endpoint, "sample_ratio", cfg.SampleRatio)
	return start(cfg, sdktrace.WithBatcher(exp), log), nil
}

// start installs a tracer provider exporting through export (cfg has its
// defaults) and returns its shutdown.
func start(cfg Config, export sdktrace.TracerProviderOption, log *slog.Logger) func(context.Context) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	tp := sdktrace.NewTracerProvider(
		export,
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		// StartSend decides a root's sampling itself, before any span is
		// made (an unsampled send then costs a random number); entries
		// and deliveries follow their parent's flag.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing export failed", "err", err) }))
	st := &state{tracer: tp.Tracer(scope), origin: cfg.Instance, ratio: cfg.SampleRatio}
	cur.Store(st)
	return func(ctx context.Context) error {
		cur.CompareAndSwap(st, nil)
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}
}

// carrier adapts a NATS header to the propagator (case-sensitive keys, as
// NATS keeps them).
type carrier nats.Header

func (c carrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c carrier) Set(key, value string) { c[key] = []string{value} }
func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Parent returns the span context a NATS header carries (invalid when it
// carries none).
func Parent(h nats.Header) trace.SpanContext {
	if h == nil || h.Get(Header) == "" {
		return trace.SpanContext{}
	}
	var p propagation.TraceContext
	return trace.SpanContextFromContext(p.Extract(context.Background(), carrier(h)))
}
