package tracing

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	natter "github.com/natter-im/natter"
)

// Span names.
const (
	// SpanSend is the edge's handling of a send frame, from its receipt to
	// the ack (the root of a message's trace).
	SpanSend = "natter.send"
	// SpanAppend is the append to the log inside SpanSend; the log entry's
	// traceparent names it.
	SpanAppend = "natter.append"
	// SpanRolePrefix + role is one worker role's handling of a log entry
	// (natter.persist, natter.fanout, natter.events, natter.push, ...).
	SpanRolePrefix = "natter."
	// SpanDeliver is an edge's push of a delivery to the sessions of one
	// recipient on it.
	SpanDeliver = "natter.deliver"
)

// Attribute keys.
const (
	AttrConv      = attribute.Key("natter.conv")
	AttrUser      = attribute.Key("natter.user")
	AttrSeq       = attribute.Key("natter.seq")
	AttrMsgID     = attribute.Key("natter.msg_id")
	AttrDup       = attribute.Key("natter.dup")
	AttrEdge      = attribute.Key("natter.edge")
	AttrRole      = attribute.Key("natter.role")
	AttrStreamSeq = attribute.Key("natter.stream_seq")
	AttrDelivered = attribute.Key("natter.delivery_count")
	AttrOutcome   = attribute.Key("natter.outcome")
	AttrDevices   = attribute.Key("natter.devices")
	AttrEntries   = attribute.Key("natter.entries")
)

// Send is a traced send: the edge's root span and its append. A nil *Send
// (tracing off, or the send not sampled) does nothing.
type Send struct {
	root, app trace.Span
	edge      string
	st        *state
}

type sendKey struct{}

// StartSend starts the spans of a send received at start by edge, for
// user into conv, and returns the context to append with: [Inject] writes
// its trace context into the log entry. It returns ctx and nil when tracing
// is off or the send is not sampled.
func StartSend(ctx context.Context, start time.Time, edge, conv, user string) (context.Context, *Send) {
	st := cur.Load()
	if st == nil || (st.ratio < 1 && rand.Float64() >= st.ratio) {
		return ctx, nil
	}
	rctx, root := st.tracer.Start(ctx, SpanSend, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(AttrConv.String(conv), AttrUser.String(user), AttrEdge.String(edge)))
	if !root.SpanContext().IsSampled() {
		return ctx, nil
	}
	actx, app := st.tracer.Start(rctx, SpanAppend, trace.WithSpanKind(trace.SpanKindProducer))
	s := &Send{root: root, app: app, edge: edge, st: st}
	return context.WithValue(actx, sendKey{}, s), s
}

// End ends the send's spans with its outcome.
func (s *Send) End(ack natter.Ack, err error) {
	if s == nil {
		return
	}
	if err != nil {
		for _, sp := range [...]trace.Span{s.app, s.root} {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
	} else {
		attrs := []attribute.KeyValue{AttrSeq.Int64(int64(ack.Seq)), AttrMsgID.String(ack.ID), AttrDup.Bool(ack.Dup)}
		s.app.SetAttributes(attrs...)
		s.root.SetAttributes(attrs...)
	}
	s.app.End()
	s.root.End()
}

// Inject writes the trace context of the send that ctx carries (from
// [StartSend]) into h: [Header] and [OriginHeader]. Without one it does
// nothing.
func Inject(ctx context.Context, h nats.Header) {
	if cur.Load() == nil {
		return
	}
	s, ok := ctx.Value(sendKey{}).(*Send)
	if !ok {
		return
	}
	s.st.prop.Inject(trace.ContextWithSpan(context.Background(), s.app), carrier(h))
	if s.edge != "" {
		h[OriginHeader] = []string{s.edge}
	}
}

// Batch is the spans of the traced messages of one worker batch, by index.
// A nil *Batch (tracing off, or no message of the batch traced) does
// nothing.
type Batch struct {
	spans []trace.Span
	st    *state
}

type batchKey struct{}

// StartBatch starts a span named [SpanRolePrefix]+role, child of the
// message's trace context, for every message of msgs that carries one, and
// returns ctx with the batch in it (for [InjectBatch]). It returns ctx and
// nil when tracing is off or no message carries a trace context.
func StartBatch(ctx context.Context, role string, msgs []jetstream.Msg) (context.Context, *Batch) {
	st := cur.Load()
	if st == nil {
		return ctx, nil
	}
	var b *Batch
	for i, m := range msgs {
		h := m.Headers()
		if h == nil || h.Get(Header) == "" {
			continue
		}
		pctx := st.prop.Extract(ctx, carrier(h))
		if !trace.SpanContextFromContext(pctx).IsValid() {
			continue
		}
		attrs := []attribute.KeyValue{AttrRole.String(role), attribute.String("messaging.destination.name", m.Subject())}
		if md, err := m.Metadata(); err == nil {
			attrs = append(attrs, AttrStreamSeq.Int64(int64(md.Sequence.Stream)), AttrDelivered.Int64(int64(md.NumDelivered)))
		}
		if seq := h.Get("Natter-Seq"); seq != "" { // msglog.HeaderSeq (msglog imports this package)
			if n, err := strconv.ParseInt(seq, 10, 64); err == nil {
				attrs = append(attrs, AttrSeq.Int64(n))
			}
		}
		_, sp := st.tracer.Start(pctx, SpanRolePrefix+role, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		if b == nil {
			b = &Batch{spans: make([]trace.Span, len(msgs)), st: st}
		}
		b.spans[i] = sp
	}
	if b == nil {
		return ctx, nil
	}
	return context.WithValue(ctx, batchKey{}, b), b
}

// End ends the span of message i (if it has one) with the runner's outcome
// for it; failed marks the span as an error with reason.
func (b *Batch) End(i int, outcome string, failed bool, reason string) {
	if b == nil || i >= len(b.spans) || b.spans[i] == nil {
		return
	}
	sp := b.spans[i]
	sp.SetAttributes(AttrOutcome.String(outcome))
	if failed {
		sp.SetStatus(codes.Error, reason)
	}
	sp.End()
}

// InjectBatch returns h with the trace context of the span of the first of
// the messages idx (indexes into the batch) that has one: a delivery
// message carrying several entries carries one trace context. h is
// returned as it is when none has one, copied (or made) otherwise:
// payload headers are shared.
func InjectBatch(ctx context.Context, idx []int, h nats.Header) nats.Header {
	if cur.Load() == nil {
		return h
	}
	b, ok := ctx.Value(batchKey{}).(*Batch)
	if !ok {
		return h
	}
	for _, i := range idx {
		if i < len(b.spans) && b.spans[i] != nil {
			out := make(nats.Header, len(h)+1)
			for k, v := range h {
				out[k] = v
			}
			b.st.prop.Inject(trace.ContextWithSpan(context.Background(), b.spans[i]), carrier(out))
			return out
		}
	}
	return h
}

// Deliver is an edge's traced push of one delivery to a recipient. A nil
// *Deliver does nothing.
type Deliver struct{ sp trace.Span }

// StartDeliver starts the span of a delivery to user (empty for a
// broadcast to a group's members) when h carries a trace context; nil when
// tracing is off or it carries none.
func StartDeliver(h nats.Header, user string) *Deliver {
	st := cur.Load()
	if st == nil || h == nil || h.Get(Header) == "" {
		return nil
	}
	pctx := st.prop.Extract(context.Background(), carrier(h))
	if !trace.SpanContextFromContext(pctx).IsValid() {
		return nil
	}
	attrs := []attribute.KeyValue{AttrEdge.String(st.origin)}
	if user != "" {
		attrs = append(attrs, AttrUser.String(user))
	}
	_, sp := st.tracer.Start(pctx, SpanDeliver, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	return &Deliver{sp: sp}
}

// End ends the delivery's span: entries queued on the sessions of devices.
func (d *Deliver) End(devices []string, entries int) {
	if d == nil {
		return
	}
	d.sp.SetAttributes(AttrDevices.StringSlice(devices), AttrEntries.Int(entries))
	d.sp.End()
}
