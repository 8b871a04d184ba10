package tracing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	natter "github.com/natter-im/natter"
)

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkHooks is the tracing cost of one message on the send and push
// paths: the edge's StartSend, Inject into the entry's header and End, and
// one delivery's StartDeliver and End; off, and on at sample ratios with a
// batching exporter that drops the spans (what a real one costs on the
// hot path: the batch queue).
func BenchmarkHooks(b *testing.B) {
	devices := []string{"phone"}
	run := func(b *testing.B) {
		ctx := context.Background()
		h := nats.Header{}
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			c, s := StartSend(ctx, time.Now(), "edge-a", "c1", "alice")
			Inject(c, h)
			s.End(natter.Ack{ID: "m_1", Seq: 1}, nil)
			StartDeliver(h, "bob").End(devices, 1)
		}
	}
	// none is the loop without the hooks: what "off" adds is the
	// difference.
	b.Run("none", func(b *testing.B) {
		h := nats.Header{}
		var t time.Time
		for b.Loop() {
			clear(h)
			t = time.Now()
		}
		_ = t
	})
	b.Run("off", run)
	for _, ratio := range []float64{0.01, 1} {
		b.Run(fmt.Sprintf("on-%g", ratio), func(b *testing.B) {
			stop := start(Config{SampleRatio: ratio, Instance: "edge-a"}.withDefaults(), sdktrace.WithBatcher(discard{}), nil)
			defer func() { _ = stop(context.Background()) }()
			run(b)
		})
	}
}
