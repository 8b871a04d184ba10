package push

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/presencekv"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// Deps are the handler's connections.
type Deps struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Members *convapi.MemberCache
	// Badge returns a user's unread count over every conversation, those
	// being notified about included ([UnreadBadge]). Nil means every badge
	// is 0.
	Badge func(ctx context.Context, user string, notified []string) (uint64, error)
}

// Handler sends the notifications of log entries.
type Handler struct {
	cfg       Config
	d         Deps
	regs      *pushreg.Bucket
	presence  string // the PRESENCE stream's direct get subject
	m         *metrics
	mu        sync.Mutex
	delivered map[string]map[string]bool // message id -> devices reached, of entries being retried
}

var _ runner.Handler = (*Handler)(nil)

// New returns the push handler.
func New(ctx context.Context, cfg Config, d Deps) (*Handler, error) {
	cfg = cfg.withDefaults()
	regs, err := pushreg.Open(ctx, d.NC, d.JS)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, d: d, regs: regs, m: newMetrics(cfg.Registerer), delivered: map[string]map[string]bool{},
		presence: kvbatch.BucketDirectGet(d.JS.Options(), subjects.BucketPresence)}
	h.m.providers.Set(float64(len(cfg.Providers)))
	return h, nil
}

// Consumes reports whether the handler is to be run on the PUSH consumer:
// only with a provider. Replicas share that consumer, so a replica without
// providers that took entries would acknowledge notifications a replica
// with providers could have sent; it must not consume at all.
func (h *Handler) Consumes() bool { return len(h.cfg.Providers) > 0 }

// convBatch is one conversation's entries of a batch.
type convBatch struct {
	idx  []int
	msgs []natter.Message // the entries to push, in log order
}

// job is one notification to one device.
type job struct {
	conv string
	dev  pushreg.Device
	n    Notification
}

// Handle sends, for each conversation of the batch, one notification per
// offline registered device of each member: of the newest entry not sent
// by that member.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	if !h.Consumes() {
		// Not to be run ([Handler.Consumes]); hand the entries back for a
		// replica that has providers.
		return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: ErrNoProviders.Error()})
	}
	res := runner.All(len(msgs), runner.Result{Outcome: runner.Ack})
	var order []string
	byConv := map[string]*convBatch{}
	oldest := time.Now().Add(-h.cfg.MaxAge).UnixMilli()
	for i, m := range msgs {
		msg, err := msglog.Decode(m.Data(), m.Headers())
		if err != nil {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "push: " + err.Error()}
			continue
		}
		cb := byConv[msg.Conv]
		if cb == nil {
			cb = &convBatch{}
			byConv[msg.Conv] = cb
			order = append(order, msg.Conv)
		}
		cb.idx = append(cb.idx, i)
		switch {
		case msg.IsEdit() || msg.IsDelete():
		case msg.TS < oldest:
			h.m.skipped.WithLabelValues("old").Inc()
		default:
			cb.msgs = append(cb.msgs, msg)
		}
	}
	failed := map[string]runner.Result{} // conv -> its retry
	fail := func(conv, reason string, delay time.Duration) {
		if r, ok := failed[conv]; !ok || delay > r.Delay {
			failed[conv] = runner.Result{Outcome: runner.Retry, Reason: reason, Delay: delay}
		}
	}
	// The recipients of each conversation: members with an entry of
	// someone else in the batch.
	type target struct {
		conv string
		user string
		msg  natter.Message
	}
	var targets []target
	var users []string
	seen := map[string]bool{}
	for _, conv := range order {
		cb := byConv[conv]
		if len(cb.msgs) == 0 {
			continue
		}
		members, err := h.d.Members.Members(ctx, conv)
		if err != nil {
			fail(conv, "push: members of "+conv+": "+err.Error(), 0)
			continue
		}
		for _, u := range members {
			msg, ok := newestNotFrom(cb.msgs, u)
			if !ok {
				continue
			}
			targets = append(targets, target{conv, u, msg})
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
	}
	if len(targets) == 0 {
		return h.settle(res, byConv, failed)
	}
	devices, err := h.regs.Users(ctx, users)
	if err != nil {
		return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: err.Error()})
	}
	var withDevices []string
	for _, u := range users {
		if len(devices[u]) > 0 {
			withDevices = append(withDevices, u)
		}
	}
	online, err := presencekv.Read(ctx, h.d.NC, h.presence, withDevices)
	if err != nil {
		return runner.All(len(msgs), runner.Result{Outcome: runner.Retry, Reason: err.Error()})
	}
	// The targets with devices to push to, then their mute settings and
	// badges, read concurrently (a round trip or three each).
	type pending struct {
		target
		offline []pushreg.Device
		muted   bool
		err     error
	}
	var todo []*pending
	for _, t := range targets {
		devs := devices[t.user]
		if len(devs) == 0 {
			continue
		}
		on := online[t.user]
		if h.cfg.SkipOnlineUsers && on.Any() {
			h.m.skipped.WithLabelValues("online").Add(float64(len(devs)))
			continue
		}
		p := &pending{target: t}
		for _, d := range devs {
			switch {
			case on.Has(d.Device):
				h.m.skipped.WithLabelValues("online").Inc()
			case h.cfg.Providers[d.Provider] == nil:
				h.m.skipped.WithLabelValues("provider").Inc()
			case h.reached(t.msg.ID, d):
			default:
				p.offline = append(p.offline, d)
			}
		}
		if len(p.offline) > 0 {
			todo = append(todo, p)
		}
	}
	if h.cfg.Muted != nil {
		h.parallel(len(todo), func(i int) {
			p := todo[i]
			if p.muted, p.err = h.cfg.Muted(ctx, p.conv, p.user); p.err != nil {
				p.err = fmt.Errorf("push: muted: %w", p.err)
			}
		})
	}
	badges := map[string]*badge{}
	var toBadge []*badge
	for _, p := range todo {
		if p.err != nil || p.muted {
			continue
		}
		b := badges[p.user]
		if b == nil {
			b = &badge{user: p.user}
			badges[p.user] = b
			toBadge = append(toBadge, b)
		}
		b.convs = append(b.convs, p.conv)
	}
	if h.d.Badge != nil {
		h.parallel(len(toBadge), func(i int) {
			b := toBadge[i]
			if b.n, b.err = h.d.Badge(ctx, b.user, b.convs); b.err != nil {
				b.err = fmt.Errorf("push: badge: %w", b.err)
			}
		})
	}
	var jobs []job
	for _, p := range todo {
		if p.muted {
			h.m.skipped.WithLabelValues("muted").Add(float64(len(p.offline)))
			continue
		}
		if p.err == nil {
			p.err = badges[p.user].err
		}
		if p.err != nil {
			fail(p.conv, p.err.Error(), 0)
			continue
		}
		n := Notification{Conv: p.conv, Seq: p.msg.Seq, From: p.msg.From, ID: p.msg.ID, Text: DefaultText, Badge: badges[p.user].n}
		if h.cfg.Preview {
			n.Text = preview(p.msg.Body, h.cfg.PreviewMax)
		}
		for _, d := range p.offline {
			jobs = append(jobs, job{conv: p.conv, dev: d, n: n})
		}
	}
	errs := h.sendAll(ctx, jobs)
	for i, j := range jobs {
		var re *RetryError
		switch err := errs[i]; {
		case err == nil:
			h.remember(j.n.ID, j.dev)
		case errors.Is(err, ErrUnregistered):
			if derr := h.regs.DeleteIf(ctx, j.dev); derr != nil && !errors.Is(derr, pushreg.ErrNotFound) {
				h.cfg.Logger.Warn("push: unregistered device not deleted", "user", j.dev.User, "device", j.dev.Device, "err", derr)
			} else {
				h.cfg.Logger.Info("push: device unregistered by its provider: registration deleted", "user", j.dev.User, "device", j.dev.Device, "provider", j.dev.Provider)
			}
		case errors.As(err, &re):
			fail(j.conv, "push: "+j.dev.Provider+": "+err.Error(), re.After)
		case ctx.Err() != nil:
			fail(j.conv, "push: "+err.Error(), 0)
		default:
			h.cfg.Logger.Warn("push: notification dropped", "provider", j.dev.Provider, "user", j.dev.User, "device", j.dev.Device, "err", err)
		}
	}
	return h.settle(res, byConv, failed)
}

// settle sets the results of failed conversations' entries, and forgets
// the reached devices of the others'.
func (h *Handler) settle(res []runner.Result, byConv map[string]*convBatch, failed map[string]runner.Result) []runner.Result {
	for conv, cb := range byConv {
		r, ok := failed[conv]
		for _, i := range cb.idx {
			if res[i].Outcome == runner.Ack && ok {
				res[i] = r
			}
		}
		if !ok {
			h.forget(cb.msgs)
		}
	}
	return res
}

// newestNotFrom returns the newest of msgs not sent by user.
func newestNotFrom(msgs []natter.Message, user string) (natter.Message, bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].From != user {
			return msgs[i], true
		}
	}
	return natter.Message{}, false
}

// preview cuts body to at most max bytes at a rune boundary.
func preview(body string, max int) string {
	if len(body) <= max {
		return body
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + "…"
}

// maxRemembered bounds the devices remembered for entries being retried.
const maxRemembered = 100_000

func deviceKey(d pushreg.Device) string { return d.User + "." + d.Device }

// reached reports whether the notification of message id went to d in an
// earlier delivery of its entry.
func (h *Handler) reached(id string, d pushreg.Device) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered[id][deviceKey(d)]
}

func (h *Handler) remember(id string, d pushreg.Device) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.delivered) >= maxRemembered {
		clear(h.delivered)
	}
	m := h.delivered[id]
	if m == nil {
		m = map[string]bool{}
		h.delivered[id] = m
	}
	m[deviceKey(d)] = true
}

func (h *Handler) forget(msgs []natter.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		delete(h.delivered, m.ID)
	}
}

// badge is one user's badge as read for a batch.
type badge struct {
	user  string
	convs []string // being notified about
	n     uint64
	err   error
}

// parallel runs fn(0..n-1), Concurrency at a time.
func (h *Handler) parallel(n int, fn func(i int)) {
	sem := make(chan struct{}, h.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// sendAll sends jobs, Concurrency at a time; errs[i] is jobs[i]'s outcome.
func (h *Handler) sendAll(ctx context.Context, jobs []job) []error {
	errs := make([]error, len(jobs))
	h.parallel(len(jobs), func(i int) { errs[i] = h.send(ctx, jobs[i]) })
	return errs
}

// send sends one notification, retrying transient failures with back-off
// while the wait is at most MaxWait.
func (h *Handler) send(ctx context.Context, j job) error {
	p := h.cfg.Providers[j.dev.Provider]
	start := time.Now()
	defer func() { h.m.seconds.WithLabelValues(j.dev.Provider).Observe(time.Since(start).Seconds()) }()
	wait := h.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := p.Send(ctx, j.dev, j.n)
		var re *RetryError
		switch {
		case err == nil:
			h.m.sends.WithLabelValues(j.dev.Provider, "ok").Inc()
			return nil
		case errors.Is(err, ErrUnregistered):
			h.m.sends.WithLabelValues(j.dev.Provider, "unregistered").Inc()
			return err
		case !errors.As(err, &re):
			h.m.sends.WithLabelValues(j.dev.Provider, "rejected").Inc()
			return err
		}
		w := max(wait, re.After)
		if attempt >= h.cfg.Attempts || w > h.cfg.MaxWait {
			h.m.sends.WithLabelValues(j.dev.Provider, "failed").Inc()
			return err
		}
		h.m.sends.WithLabelValues(j.dev.Provider, "retry").Inc()
		t := time.NewTimer(w)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait *= 2
	}
}
