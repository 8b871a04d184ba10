package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/tracing"
)

// flushTimeout bounds the flush of acks after the last Handle call.
const flushTimeout = 5 * time.Second

// Looking a lost consumer up again: the first try at once, then after
// reattachMin, doubling up to reattachMax, until Stop. lookupTimeout bounds
// one look-up.
const (
	reattachMin   = 250 * time.Millisecond
	reattachMax   = 5 * time.Second
	lookupTimeout = 5 * time.Second
)

// Runner runs one worker role on one durable consumer. Create it with [New],
// run it with [Runner.Start], stop it with [Runner.Stop].
type Runner struct {
	js  jetstream.JetStream
	cfg Config
	h   Handler
	log *slog.Logger
	c   counters

	queue    chan jetstream.Msg
	stopping chan struct{} // closed by Stop: no new consume context
	input    chan struct{} // closed when the last consume context is closed: no more callbacks
	abort    chan struct{} // closed when a Stop gives up waiting: hand messages back
	done     chan struct{} // closed when every loop has returned and acks are flushed

	maxDeliver atomic.Int64 // the consumer's MaxDeliver; -1 or 0: unlimited

	mu        sync.Mutex
	state     int                      // stateNew, stateRunning, stateStopped
	cc        jetstream.ConsumeContext // the current one; nil while the consumer is lost
	lostErr   error                    // why there is no consume context; nil while consuming
	cancel    context.CancelFunc       // of the Handle context
	abortOnce sync.Once
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// New returns a Runner of cfg.Role that hands batches from the durable
// consumer cfg.Stream/cfg.Consumer to h. It does not contact the server; see
// [Runner.Start]. It fails with [ErrInvalidConfig] for a bad cfg, or when the
// metrics cannot be registered.
func New(js jetstream.JetStream, cfg Config, h Handler) (*Runner, error) {
	if js == nil || h == nil {
		return nil, fmt.Errorf("%w: JetStream and Handler are required", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Runner{
		js:       js,
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger.With("role", cfg.Role, "stream", cfg.Stream, "consumer", cfg.Consumer),
		queue:    make(chan jetstream.Msg, cfg.pullMax()),
		stopping: make(chan struct{}),
		input:    make(chan struct{}),
		abort:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	r.lostErr = fmt.Errorf("%w: %s: not started", ErrNotConsuming, cfg.Role)
	if cfg.Registerer != nil {
		if err := r.c.register(cfg.Registerer, cfg.Role); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return r, nil
}

// Start looks up the consumer and begins consuming. ctx bounds the look-up
// only; the Runner runs until [Runner.Stop]. Start fails if the consumer does
// not exist (wrapping [jetstream.ErrConsumerNotFound] or
// [jetstream.ErrStreamNotFound]), with [ErrConsumerMismatch] if it cannot be
// run with the Config, with [ErrStarted] on a second call and with
// [ErrStopped] after Stop.
//
// Once started, the Runner outlives its consumer: when the consume loop ends
// before Stop (the consumer was deleted, the server ended the pull), it looks
// the consumer up again by its durable name, with a backoff from 250ms up to
// 5s, until Stop, and resumes consuming once it is back (recreated by
// "natter streams apply" or another process's start). It never creates the
// consumer itself. Meanwhile [Runner.Ready] fails.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateRunning:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	cons, err := r.lookup(ctx)
	if err != nil {
		return err
	}
	cc, err := r.consume(cons)
	if err != nil {
		return err
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cc, r.lostErr, r.cancel = cc, nil, cancel
	r.state = stateRunning
	r.c.setConsuming(true)

	var loops sync.WaitGroup
	for range r.cfg.Concurrency {
		loops.Go(func() { r.loop(hctx) })
	}
	go func() {
		r.supervise(cc)
		close(r.input)
		loops.Wait()
		r.flush()
		cancel()
		close(r.done)
	}()
	r.log.Info("runner started", "batch", r.cfg.BatchSize, "concurrency", r.cfg.Concurrency, "max_deliver", r.maxDeliver.Load(),
		"pull_expiry", r.cfg.PullExpiry, "pull_heartbeat", r.cfg.PullHeartbeat)
	return nil
}

// lookup finds the durable consumer and checks that it can be run with the
// Config; it records the consumer's MaxDeliver.
func (r *Runner) lookup(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := r.js.Consumer(ctx, r.cfg.Stream, r.cfg.Consumer)
	if err != nil {
		return nil, fmt.Errorf("runner: %s: consumer %s/%s: %w", r.cfg.Role, r.cfg.Stream, r.cfg.Consumer, err)
	}
	cc := cons.CachedInfo().Config
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		return nil, fmt.Errorf("%w: %s/%s has ack policy %s, want explicit", ErrConsumerMismatch, r.cfg.Stream, r.cfg.Consumer, cc.AckPolicy)
	}
	if r.cfg.MaxDeliver != 0 && r.cfg.MaxDeliver != cc.MaxDeliver {
		return nil, fmt.Errorf("%w: %s/%s has MaxDeliver %d, config says %d", ErrConsumerMismatch, r.cfg.Stream, r.cfg.Consumer, cc.MaxDeliver, r.cfg.MaxDeliver)
	}
	r.maxDeliver.Store(int64(cc.MaxDeliver))
	return cons, nil
}

// consume starts a consume context on cons.
func (r *Runner) consume(cons jetstream.Consumer) (jetstream.ConsumeContext, error) {
	cc, err := cons.Consume(r.enqueue,
		jetstream.PullMaxMessages(r.cfg.pullMax()),
		jetstream.PullExpiry(r.cfg.PullExpiry),
		jetstream.PullHeartbeat(r.cfg.PullHeartbeat),
		jetstream.ConsumeErrHandler(r.consumeError))
	if err != nil {
		return nil, fmt.Errorf("runner: %s: consume %s/%s: %w", r.cfg.Role, r.cfg.Stream, r.cfg.Consumer, err)
	}
	return cc, nil
}

// supervise waits for the consume context cc to close. Closed by Stop's
// drain, it returns. Closed before Stop, the consumer is lost: it looks the
// consumer up again until it is back, consumes it and waits again, or
// returns when Stop comes first.
func (r *Runner) supervise(cc jetstream.ConsumeContext) {
	for {
		<-cc.Closed()
		r.mu.Lock()
		if r.state == stateStopped {
			r.mu.Unlock()
			return
		}
		r.cc, r.lostErr = nil, fmt.Errorf("%w: %s: the consume loop of %s/%s ended; looking the consumer up again", ErrNotConsuming, r.cfg.Role, r.cfg.Stream, r.cfg.Consumer)
		r.mu.Unlock()
		r.c.setConsuming(false)
		r.c.consumeEnded()
		r.c.failed("consume context closed before Stop")
		r.log.Error("consume context closed before Stop (consumer deleted?); not consuming until the consumer is found again")
		if cc = r.reattach(); cc == nil {
			return
		}
	}
}

// reattach looks the consumer up until it exists and starts consuming it
// again. It returns nil once Stop is called, or when the connection is
// closed for good.
func (r *Runner) reattach() jetstream.ConsumeContext {
	lostAt := time.Now()
	wait := time.Duration(0)
	for attempt := 1; ; attempt++ {
		select {
		case <-r.stopping:
			return nil
		case <-time.After(wait):
		}
		wait = min(max(2*wait, reattachMin), reattachMax)
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		cons, err := r.lookup(ctx)
		cancel()
		var cc jetstream.ConsumeContext
		if err == nil {
			r.mu.Lock()
			if r.state == stateStopped {
				r.mu.Unlock()
				return nil
			}
			if cc, err = r.consume(cons); err == nil {
				r.cc, r.lostErr = cc, nil
			}
			r.mu.Unlock()
		}
		if err != nil {
			r.mu.Lock()
			r.lostErr = fmt.Errorf("%w: %w", ErrNotConsuming, err)
			r.mu.Unlock()
			r.c.failed("reattach: " + err.Error())
			if errors.Is(err, nats.ErrConnectionClosed) {
				r.log.Error("connection closed; no longer looking for the consumer", "err", err)
				return nil
			}
			r.log.Warn("consumer not available; retrying", "attempt", attempt, "retry_in", wait, "err", err)
			continue
		}
		r.c.setConsuming(true)
		r.log.Info("consumer found again; consuming", "attempt", attempt, "after", time.Since(lostAt).Round(time.Millisecond), "max_deliver", r.maxDeliver.Load())
		return cc
	}
}

// Ready reports whether the Runner consumes: nil while it is attached to its
// consumer, an error wrapping [ErrNotConsuming] before Start, after Stop and
// while it looks for a consumer it lost. A process adds it to its
// readiness checks.
func (r *Runner) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateStopped {
		return fmt.Errorf("%w: %s: %w", ErrNotConsuming, r.cfg.Role, ErrStopped)
	}
	return r.lostErr
}

// Stop drains the Runner: it stops pulling, hands every message already
// received to Handle, waits for the consume context to close, for every
// Handle call and its acks, and flushes the connection. Stop before Start
// just marks the Runner stopped. Calling Stop again waits for the same drain.
//
// If ctx ends first, Stop cancels the context of running Handle calls, hands
// messages not yet handled back to the server (Nak) and returns ctx's error;
// messages of unfinished Handle calls are redelivered after AckWait.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	switch r.state {
	case stateNew:
		r.state = stateStopped
		r.mu.Unlock()
		return nil
	case stateRunning:
		r.state = stateStopped
		r.log.Info("runner stopping")
		close(r.stopping)
		if r.cc != nil {
			r.cc.Drain()
		}
		r.c.setConsuming(false)
	}
	started := r.cancel != nil
	r.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.abortOnce.Do(func() {
			close(r.abort)
			r.cancel()
		})
		r.log.Warn("runner stop gave up waiting", "err", ctx.Err())
		return fmt.Errorf("runner: %s: stop: %w", r.cfg.Role, ctx.Err())
	}
}

// Stats returns the Runner's counters.
func (r *Runner) Stats() Stats {
	r.c.mu.Lock()
	lastErr, lastErrAt := r.c.lastErr, r.c.lastErrTime
	r.c.mu.Unlock()
	return Stats{
		Role:        r.cfg.Role,
		Processed:   r.c.processed.Load(),
		Acked:       r.c.acked.Load(),
		Retried:     r.c.retried.Load(),
		Poisoned:    r.c.poisoned.Load(),
		InFlight:    int(r.c.inFlight.Load()),
		Queued:      len(r.queue),
		Consuming:   r.c.consuming.Load(),
		ConsumeLost: r.c.consumeLost.Load(),
		LastError:   lastErr,
		LastErrorAt: lastErrAt,
	}
}

// enqueue is the Consume callback. Blocking here is the back-pressure: the
// client buffers at most PullMaxMessages.
func (r *Runner) enqueue(m jetstream.Msg) {
	select {
	case r.queue <- m:
	case <-r.abort:
		r.handBack(m)
	}
}

func (r *Runner) consumeError(_ jetstream.ConsumeContext, err error) {
	r.log.Warn("consume error", "err", err)
	r.c.failed("consume: " + err.Error())
}

// loop takes one message (waiting), then what else is queued up to BatchSize
// (not waiting), and handles the batch. It returns once the consume context is
// closed and the queue is empty.
func (r *Runner) loop(ctx context.Context) {
	// One batch slice per loop, reused: a fresh one per batch was BatchSize
	// interfaces (4 KiB at 256) for batches of a few messages at low rates.
	// Handlers do not keep msgs past Handle (Handler's contract).
	buf := make([]jetstream.Msg, 0, r.cfg.BatchSize)
	for {
		var first jetstream.Msg
		select {
		case first = <-r.queue:
		case <-r.input:
			select {
			case first = <-r.queue:
			default:
				return
			}
		}
		batch := append(buf[:0], first)
	fill:
		for len(batch) < r.cfg.BatchSize {
			select {
			case m := <-r.queue:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if len(batch) < r.cfg.BatchSize && r.cfg.Linger > 0 && r.lingerOn(batch...) {
			batch = r.linger(batch)
		}
		select {
		case <-r.abort:
			for _, m := range batch {
				r.handBack(m)
			}
			clear(batch)
			continue
		default:
		}
		r.process(ctx, batch)
		clear(batch) // hold no message until the next batch
	}
}

// lingerOn reports whether Config.LingerOn accepts every one of msgs.
func (r *Runner) lingerOn(msgs ...jetstream.Msg) bool {
	if r.cfg.LingerOn == nil {
		return true
	}
	for _, m := range msgs {
		if !r.cfg.LingerOn(m) {
			return false
		}
	}
	return true
}

// linger waits up to Config.Linger for more messages until the batch is
// full; it stops early when a message LingerOn refuses arrives, when the
// input ends or when a Stop gives up.
func (r *Runner) linger(batch []jetstream.Msg) []jetstream.Msg {
	t := time.NewTimer(r.cfg.Linger)
	defer t.Stop()
	for len(batch) < r.cfg.BatchSize {
		select {
		case m := <-r.queue:
			batch = append(batch, m)
			if !r.lingerOn(m) {
				return batch
			}
		case <-t.C:
			return batch
		case <-r.input:
			return batch
		case <-r.abort:
			return batch
		}
	}
	return batch
}

func (r *Runner) process(ctx context.Context, batch []jetstream.Msg) {
	n := len(batch)
	r.c.addInFlight(n)
	defer r.c.addInFlight(-n)
	start := time.Now()
	hctx, spans := tracing.StartBatch(ctx, r.cfg.Role, batch) // one span per traced entry
	results := r.handle(hctx, batch)
	r.c.observe(n, time.Since(start))
	if len(results) != n {
		r.log.Error("handler returned wrong number of results; retrying the batch", "want", n, "got", len(results))
		results = All(n, Result{Outcome: Retry, Reason: fmt.Sprintf("handler bug: %d results for %d messages", len(results), n)})
	}
	for i, m := range batch {
		spans.End(i, results[i].Outcome.String(), results[i].Outcome != Ack, results[i].Reason)
		r.settle(ctx, m, results[i])
	}
}

// handle calls the Handler; a panic retries the whole batch.
func (r *Runner) handle(ctx context.Context, batch []jetstream.Msg) (results []Result) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("handler panic; retrying the batch", "panic", p, "batch", len(batch), "stack", string(debug.Stack()))
			results = All(len(batch), Result{Outcome: Retry, Reason: fmt.Sprintf("handler panic: %v", p)})
		}
	}()
	return r.h.Handle(ctx, batch)
}

// handBack returns a message not handled to the server for redelivery now.
func (r *Runner) handBack(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		r.log.Warn("nak on abort failed", "subject", m.Subject(), "err", err)
	}
}

// flush makes sure the server has the acks before Stop returns.
func (r *Runner) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := r.js.Conn().FlushWithContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("flush after drain failed", "err", err)
	}
}
