package bench

import (
	"context"
	"fmt"
	"time"
)

// result builds the common part of a Result from a fleet run.
func (r *runner) result(scenario, name string, d *driven, conns int, rate float64) *Result {
	res := &Result{Scenario: scenario, Name: name, Conns: conns, Rate: rate, Size: r.cfg.Size, Procs: r.cfg.Procs,
		Seconds: round3(d.seconds()), Connected: d.connected, Sent: d.sent, Delivered: d.delivered, Errors: d.errors,
		Acked: d.acked, Lost: d.lost, SourceAddrs: d.srcAddrs, Unit: "msg/s", Latency: d.lat.latency(), AckLatency: d.ackLat.latency(), PersistPending: -1}
	if s := d.seconds(); s > 0 {
		res.Throughput = round3(float64(d.delivered) / s)
	}
	res.CPU = d.cpu("msg", float64(d.delivered))
	if d.lost > 0 {
		res.note("%d acked messages not delivered within the drain timeout", d.lost)
	}
	if d.firstErr != "" {
		res.note("first error: %s", d.firstErr)
	}
	if d.warmUpSecs > 0 {
		res.note("warm-up before the window: one message per pair into its fresh conversation, all delivered in %.2f s (not counted)", d.warmUpSecs)
	}
	return res
}

// relay runs the relay scenario and its baselines.
func (r *runner) relay(ctx context.Context) ([]*Result, error) {
	res, err := r.relayOnce(ctx, r.cfg.conns("relay"), r.cfg.Rate)
	if err != nil {
		return nil, err
	}
	return []*Result{res}, nil
}

// relayOnce measures natter relay with conns connections at rate (0: flat
// out), then the raw baselines with the same generator.
func (r *runner) relayOnce(ctx context.Context, conns int, rate float64) (*Result, error) {
	pairs := conns / 2
	if pairs < 1 {
		return nil, fmt.Errorf("relay: --conns %d: need at least 2", conns)
	}
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: r.cfg.Edges})
	if err != nil {
		return nil, err
	}
	name := "relay flat out"
	if rate > 0 {
		name = fmt.Sprintf("relay at %s msg/s", commas(int64(rate)))
	}
	base := r.jobBase("relay", t, t.urls)
	d, err := r.drive(ctx, name, t, r.jobs(base, pairs, rate), hooks{})
	if err != nil {
		t.close()
		return nil, err
	}
	res := r.result("relay", name, d, pairs*2, rate)
	res.Target = t.name()
	res.PersistPending = t.persistPending(ctx)
	r.persistDrain(ctx, t, d, res.CPU, res.PersistPending, name)
	if d.acked != d.delivered {
		res.note("acked %d, delivered %d", d.acked, d.delivered)
	}
	if rate == 0 {
		if w := r.cfg.Window; w > 1 {
			res.note("generator: %d sends in flight per sender (--window), batches of %d with client.SendAll: one write per batch, the next once all are acked", w, w)
		} else {
			res.note("generator: one send in flight per sender (--window 1), a loop of client.Send")
		}
	}
	res.note("every delivered message was acked first, and an ack means the message is in JetStream")
	t.close()
	if !r.cfg.NoBaseline {
		raw, err := r.rawPubSub(ctx, pairs*2, rate)
		if err != nil {
			return nil, err
		}
		res.Baselines = append(res.Baselines, raw)
		res.ratio("natter / raw nats ws pub/sub (delivered msg/s)", res.Throughput, raw.Throughput)
		if res.Latency != nil && raw.Latency != nil {
			res.ratio("natter / raw nats ws pub/sub (p99 latency)", res.Latency.P99, raw.Latency.P99)
		}
		js, err := r.rawJetStream(ctx, min(r.cfg.Duration, 10*time.Second))
		if err != nil {
			return nil, err
		}
		res.Baselines = append(res.Baselines, js)
		res.ratio("natter delivered msg/s / raw JetStream acked msg/s", res.Throughput, js.Throughput)
	}
	r.relayChecks(res, conns, rate)
	return res, nil
}

func (r *runner) relayChecks(res *Result, conns int, rate float64) {
	if rate == 0 {
		res.check("relay, 1,000 connections flat out: >= 50,000 delivered msg/s", fnum(res.Throughput)+" msg/s", res.Throughput >= 50_000, conns < 1000)
		for _, ra := range res.Ratios {
			if ra.Name == "natter / raw nats ws pub/sub (delivered msg/s)" {
				res.check("relay flat out: >= 10% of raw NATS WebSocket pub/sub", fmt.Sprintf("%.1f%%", ra.Value*100), ra.Value >= 0.10, conns < 1000)
			}
		}
		return
	}
	if res.Latency != nil {
		res.check("relay at a steady 2,000 msg/s: send->deliver p99 <= 5 ms", fnum(res.Latency.P99)+" ms", res.Latency.P99 <= 5, rate != 2000)
	}
}
