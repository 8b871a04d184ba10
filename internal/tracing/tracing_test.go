package tracing

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	natter "github.com/natter-im/natter"
)

// on installs a tracer with ratio that records into an in-memory exporter
// until the test ends.
func on(t testing.TB, ratio float64) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	stop := start(Config{SampleRatio: ratio, Instance: "edge-a"}.withDefaults(), sdktrace.WithSyncer(exp), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = stop(context.Background()) })
	return exp
}

// TestOff: with tracing off every hook returns what it was given, writes
// no header and allocates nothing.
func TestOff(t *testing.T) {
	if Enabled() {
		t.Fatal("tracing is on before Setup")
	}
	ctx := context.Background()
	h := nats.Header{"Natter-Seq": {"1"}}
	devices, idx := []string{"phone"}, []int{0}
	allocs := testing.AllocsPerRun(100, func() {
		c, s := StartSend(ctx, time.Now(), "edge-a", "c1", "alice")
		Inject(c, h)
		s.End(natter.Ack{Seq: 1}, nil)
		bc, b := StartBatch(ctx, "persist", nil)
		b.End(0, "ack", false, "")
		_ = InjectBatch(bc, idx, nil)
		StartDeliver(h, "bob").End(devices, 1)
		if c != ctx || s != nil || b != nil || bc != ctx {
			t.Fatal("a hook did something with tracing off")
		}
	})
	if allocs != 0 {
		t.Errorf("hooks with tracing off: %v allocs, want 0", allocs)
	}
	if len(h) != 1 {
		t.Errorf("Inject with tracing off wrote %v", h)
	}
	shutdown, err := Setup(ctx, Config{}, nil)
	if err != nil || Enabled() {
		t.Fatalf("Setup without an endpoint: %v, enabled %v", err, Enabled())
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSendToDelivery: a sampled send's append span is named by the
// traceparent Inject writes (with the edge), and a delivery carrying it
// gets a child span; an unsampled send writes no header.
func TestSendToDelivery(t *testing.T) {
	exp := on(t, 1)
	ctx, s := StartSend(context.Background(), time.Now().Add(-time.Millisecond), "edge-a", "c1", "alice")
	if s == nil {
		t.Fatal("ratio 1: send not sampled")
	}
	h := nats.Header{}
	Inject(ctx, h)
	s.End(natter.Ack{ID: "m_1", Seq: 7}, nil)
	if h.Get(OriginHeader) != "edge-a" {
		t.Errorf("%s = %q, want edge-a", OriginHeader, h.Get(OriginHeader))
	}
	parent := Parent(h)
	if !parent.IsValid() || !parent.IsSampled() {
		t.Fatalf("traceparent %q: %v", h.Get(Header), parent)
	}
	StartDeliver(h, "bob").End([]string{"phone", "tablet"}, 1)
	if StartDeliver(nats.Header{}, "bob") != nil || StartDeliver(nil, "bob") != nil {
		t.Error("a delivery without a trace context got a span")
	}

	spans := map[string]tracetest.SpanStub{}
	for _, sp := range exp.GetSpans() {
		spans[sp.Name] = sp
	}
	send, app, dlv := spans[SpanSend], spans[SpanAppend], spans[SpanDeliver]
	if app.Parent.SpanID() != send.SpanContext.SpanID() || app.SpanContext.SpanID() != parent.SpanID() {
		t.Errorf("append span %v (parent %v); send %v; traceparent names %v", app.SpanContext.SpanID(), app.Parent.SpanID(), send.SpanContext.SpanID(), parent.SpanID())
	}
	if dlv.Parent.SpanID() != app.SpanContext.SpanID() || dlv.SpanContext.TraceID() != send.SpanContext.TraceID() {
		t.Errorf("deliver span's parent %v, want the append's %v", dlv.Parent.SpanID(), app.SpanContext.SpanID())
	}
	if dlv.SpanKind != trace.SpanKindConsumer || len(dlv.Attributes) == 0 {
		t.Errorf("deliver span: kind %v attrs %v", dlv.SpanKind, dlv.Attributes)
	}

	// An error marks both spans.
	_, s2 := StartSend(context.Background(), time.Now(), "edge-a", "c1", "alice")
	s2.End(natter.Ack{}, errors.New("boom"))
	if got := exp.GetSpans(); got[len(got)-1].Status.Description != "boom" {
		t.Errorf("failed send: status %v", got[len(got)-1].Status)
	}
}

// TestSampleRatio: at a low ratio most sends carry no trace context.
func TestSampleRatio(t *testing.T) {
	on(t, 0.01)
	sampled := 0
	for range 2000 {
		ctx, s := StartSend(context.Background(), time.Now(), "edge-a", "c1", "alice")
		h := nats.Header{}
		Inject(ctx, h)
		if s != nil {
			sampled++
			if h.Get(Header) == "" {
				t.Fatal("a sampled send wrote no traceparent")
			}
			s.End(natter.Ack{}, nil)
		} else if len(h) != 0 {
			t.Fatalf("an unsampled send wrote %v", h)
		}
	}
	if sampled == 0 || sampled > 100 {
		t.Errorf("ratio 0.01: %d of 2000 sampled", sampled)
	}
}
