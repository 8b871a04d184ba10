package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Config of one registration.
type Config struct {
	// Role names the process or role ("edge", "persist"): the service is
	// subjects.ServiceName(Role) and its status endpoint
	// subjects.Status(Role). Required, a valid id.
	Role string
	// Version is the SemVer version. Empty means "0.0.0-dev".
	Version string
	// Description says what the service does. Empty means "natter <role>".
	Description string
	// Metadata annotates the instance (mode, host, pid ...). Nil means none.
	Metadata map[string]string
	// Stats returns the live stats, a value encoded as JSON: the status
	// endpoint's reply and its data in $SRV.STATS. Nil means none (the
	// status endpoint answers {}).
	Stats func() any
	// Logger receives subscription errors. Nil means discard.
	Logger *slog.Logger
}

// Register adds the micro service of cfg.Role on nc, with its status
// endpoint in the queue group subjects.QueueStatus. Stop the returned
// service before draining nc.
func Register(nc *nats.Conn, cfg Config) (micro.Service, error) {
	if nc == nil {
		return nil, errors.New("discovery: register: nil connection")
	}
	if err := subjects.ValidID(cfg.Role); err != nil {
		return nil, fmt.Errorf("discovery: register: role: %w", err)
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0-dev"
	}
	if cfg.Description == "" {
		cfg.Description = "natter " + cfg.Role
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	stats := func() any {
		if cfg.Stats == nil {
			return struct{}{}
		}
		return cfg.Stats()
	}
	name := subjects.ServiceName(cfg.Role)
	svc, err := micro.AddService(nc, micro.Config{
		Name:         name,
		Version:      cfg.Version,
		Description:  cfg.Description,
		Metadata:     cfg.Metadata,
		QueueGroup:   subjects.QueueStatus,
		StatsHandler: func(*micro.Endpoint) any { return stats() },
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			cfg.Logger.Error("service subscription error", "service", name, "subject", e.Subject, "err", e.Description)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("discovery: add service %s: %w", name, err)
	}
	err = svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
		b, err := json.Marshal(stats())
		if err != nil {
			_ = req.Error("internal", "stats: "+err.Error(), nil)
			return
		}
		_ = req.Respond(b)
	}), micro.WithEndpointSubject(subjects.Status(cfg.Role)))
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("discovery: add status endpoint of %s: %w", name, err)
	}
	return svc, nil
}
