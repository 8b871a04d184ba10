package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
)

// fanout runs the fanout scenario and its baseline.
func (r *runner) fanout(ctx context.Context) ([]*Result, error) {
	res, err := r.fanoutOnce(ctx, r.cfg.Members, r.cfg.Rate)
	if err != nil {
		return nil, err
	}
	return []*Result{res}, nil
}

// createGroup creates the fanout group of members as the sender user.
func (r *runner) createGroup(ctx context.Context, t *target, members int) (string, time.Duration, error) {
	spec := clientSpec{urls: t.urls, key: t.key, aud: t.aud, iss: t.iss}
	t0 := time.Now()
	admin, err := spec.dial(ctx, fanoutSender(r.prefix), t.urls[:1], 0)
	if err != nil {
		return "", 0, fmt.Errorf("fanout: sender: %w", err)
	}
	defer admin.Close()
	users := make([]string, members)
	for i := range users {
		users[i] = fanoutMember(r.prefix, i)
	}
	first := min(members, 1000)
	// A loaded store answers unavailable now and then: retried (a create
	// that did go through leaves an unused group behind, harmless here).
	var conv natter.Conversation
	if err := retryUnavailable(ctx, func() (err error) {
		conv, err = admin.CreateGroup(ctx, "bench "+r.prefix, users[:first]...)
		return err
	}); err != nil {
		return "", 0, fmt.Errorf("fanout: create group: %w", err)
	}
	for i := first; i < members; i += 1000 {
		if err := retryUnavailable(ctx, func() error {
			return admin.AddMembers(ctx, conv.ID, users[i:min(i+1000, members)]...)
		}); err != nil {
			return "", 0, fmt.Errorf("fanout: add members: %w", err)
		}
	}
	return conv.ID, time.Since(t0), nil
}

// retryUnavailable calls f until it succeeds or fails with an error that is
// not retryable, at most 5 times, a second apart.
func retryUnavailable(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var ce *client.Error
		if err == nil || attempt == 5 || !errors.As(err, &ce) || !ce.Retryable() {
			return err
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return err
		}
	}
}

func (r *runner) fanoutOnce(ctx context.Context, members int, rate float64) (*Result, error) {
	if members < 1 {
		return nil, fmt.Errorf("fanout: --members %d: need at least 1", members)
	}
	t, err := startTarget(ctx, &r.cfg, targetOpts{edges: r.cfg.Edges})
	if err != nil {
		return nil, err
	}
	conv, took, err := r.createGroup(ctx, t, members)
	if err != nil {
		t.close()
		return nil, err
	}
	name := fmt.Sprintf("fanout to %s members flat out", commas(int64(members)))
	if rate > 0 {
		name = fmt.Sprintf("fanout to %s members at %s msg/s", commas(int64(members)), commas(int64(rate)))
	}
	base := r.jobBase("fanout", t, t.urls)
	base.Conv = conv
	jobs := r.jobs(base, members, 0)
	jobs[0].Sender, jobs[0].Rate = true, rate
	d, err := r.drive(ctx, name, t, jobs, hooks{during: expectFromSender})
	if err != nil {
		t.close()
		return nil, err
	}
	res := r.result("fanout", name, d, members+1, rate)
	res.Unit = "deliveries/s"
	res.CPU.Per = "delivery"
	res.Target = t.name()
	res.PersistPending = t.persistPending(ctx)
	res.note("%d messages sent into the group; %d members on %d edges; the group was created in %.1f s", d.sent, d.connected, len(t.urls), took.Seconds())
	t.close()
	if !r.cfg.NoBaseline {
		raw, err := r.rawFanout(ctx, members, rate)
		if err != nil {
			return nil, err
		}
		res.Baselines = append(res.Baselines, raw)
		res.ratio("natter / raw nats ws fan-out (deliveries/s)", res.Throughput, raw.Throughput)
		if res.Latency != nil && raw.Latency != nil {
			res.ratio("natter / raw nats ws fan-out (p99 latency)", res.Latency.P99, raw.Latency.P99)
		}
	}
	scaled := members < 1000
	if rate == 0 {
		res.check("fanout to 1,000 online members flat out: >= 300,000 deliveries/s", fnum(res.Throughput)+" deliveries/s", res.Throughput >= 300_000, scaled)
		for _, ra := range res.Ratios {
			if ra.Name == "natter / raw nats ws fan-out (deliveries/s)" {
				res.check("fanout flat out: >= 40% of raw NATS WebSocket fan-out", fmt.Sprintf("%.1f%%", ra.Value*100), ra.Value >= 0.4, scaled)
			}
		}
	} else if res.Latency != nil {
		res.check("fanout at 200 msg/s into the group: p99 <= 100 ms", fnum(res.Latency.P99)+" ms", res.Latency.P99 <= 100, scaled || rate != 200)
	}
	return res, nil
}
