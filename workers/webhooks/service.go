package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// Config of a webhooks [Service].
type Config struct {
	// Endpoints to deliver to, validated by [ValidateEndpoints]. Empty
	// means the Service runs nothing.
	Endpoints []Endpoint
	// Stream is the events stream. Empty means StreamEvents ("EVENTS").
	Stream string
	// Logger receives the logs, scoped with the endpoint. Nil means discard.
	Logger *slog.Logger
	// Registerer receives the natter_webhook_* metrics and the runners'
	// natter_worker_* metrics (role "webhook_<name>"). Nil means no metrics.
	Registerer prometheus.Registerer
	// Transport makes the HTTP requests (proxies, TLS roots). Nil means a
	// clone of http.DefaultTransport owned by the Service.
	Transport http.RoundTripper
}

// Service runs one [runner.Runner] per endpoint and stream, each on the
// endpoint's own durable consumer: on the events stream for the kinds
// other than the message kinds, on MSGS for those. Replicas of the worker each run a Service with the same
// endpoints and share the consumers.
type Service struct {
	names   []string
	runners []*runner.Runner
	owned   *http.Transport // closed at Stop; nil if the Config gave one
}

// Start validates cfg, creates or updates the endpoints' consumers
// ([EnsureConsumers]) and starts a runner per endpoint. ctx bounds the
// start-up only. The Service runs until [Service.Stop]. Start fails with
// [ErrInvalidEndpoint] or [ErrInvalidConfig] for a bad cfg, and with the
// server's error (e.g. [jetstream.ErrStreamNotFound]) if the consumers
// cannot be set up.
func Start(ctx context.Context, js jetstream.JetStream, cfg Config) (*Service, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrInvalidConfig)
	}
	if cfg.Stream == "" {
		cfg.Stream = StreamEvents
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	changes, err := EnsureConsumers(ctx, js, cfg.Stream, cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	for _, ch := range changes {
		cfg.Logger.Info("webhook consumer changed", "consumer", ch.Name, "action", ch.Action)
	}
	s := &Service{}
	transport := cfg.Transport
	if transport == nil {
		s.owned = http.DefaultTransport.(*http.Transport).Clone()
		transport = s.owned
	}
	for _, e := range cfg.Endpoints {
		ev, msgs := wants(e)
		for _, fromLog := range []bool{false, true} {
			if fromLog && !msgs || !fromLog && !ev {
				continue
			}
			if err := s.startEndpoint(ctx, js, cfg, transport, e.withDefaults(), fromLog); err != nil {
				_ = s.Stop(ctx)
				return nil, err
			}
		}
	}
	return s, nil
}

// startEndpoint starts the runner of e on the events stream, or with
// fromLog on MSGS (its message kinds).
func (s *Service) startEndpoint(ctx context.Context, js jetstream.JetStream, cfg Config, transport http.RoundTripper, e Endpoint, fromLog bool) error {
	m, err := newMetrics(cfg.Registerer, e.Name)
	if err != nil {
		return err
	}
	log := cfg.Logger.With("endpoint", e.Name)
	d := &deliverer{
		ep: e,
		client: &http.Client{
			Transport: transport,
			Timeout:   e.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is a failed attempt
			},
		},
		m:       m,
		log:     log,
		fromLog: fromLog,
		kinds:   kindSet(e.Kinds),
	}
	stream := cfg.Stream
	if fromLog {
		stream = subjects.StreamMsgs
	}
	r, err := runner.New(js, runner.Config{
		Role:        Role(e.Name),
		Stream:      stream,
		Consumer:    ConsumerName(e.Name),
		BatchSize:   1,
		Concurrency: e.MaxInFlight,
		Logger:      log,
		Registerer:  cfg.Registerer,
	}, d)
	if err != nil {
		return fmt.Errorf("webhooks: endpoint %s: %w", e.Name, err)
	}
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("webhooks: endpoint %s: %w", e.Name, err)
	}
	name := e.Name
	if fromLog {
		name += "/log"
	}
	s.names = append(s.names, name)
	s.runners = append(s.runners, r)
	return nil
}

// Stop drains every endpoint's runner at once: no new events are taken,
// attempts in progress finish and are settled. If ctx ends first, attempts
// still running are cancelled and their events are redelivered later. Stop
// is safe to call more than once.
func (s *Service) Stop(ctx context.Context) error {
	errs := make([]error, len(s.runners))
	var wg sync.WaitGroup
	for i, r := range s.runners {
		wg.Go(func() { errs[i] = r.Stop(ctx) })
	}
	wg.Wait()
	if s.owned != nil {
		s.owned.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Stats returns each endpoint's runner counters, by endpoint name for its
// runner on the events stream and "<name>/log" for its runner on MSGS.
func (s *Service) Stats() map[string]runner.Stats {
	st := make(map[string]runner.Stats, len(s.runners))
	for i, r := range s.runners {
		st[s.names[i]] = r.Stats()
	}
	return st
}
