package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/tracing"
)

// tracingFlags turn OpenTelemetry tracing on (off by default).
type tracingFlags struct {
	endpoint string
	sample   float64
}

func (t *tracingFlags) register(fs *cli.FlagSet) {
	fs.String(&t.endpoint, "otlp-endpoint", "NATTER_OTLP_ENDPOINT", "", "OTLP/HTTP traces URL (http://collector:4318/v1/traces); empty = tracing off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set")
	fs.Float(&t.sample, "trace-sample", "NATTER_TRACE_SAMPLE", tracing.DefaultSampleRatio, "share of sends traced when tracing is on (0 < r <= 1); workers and deliveries follow the edge's decision", cli.Between(0.000001, 1))
}

// setup turns tracing on when an endpoint is configured, naming the edge:
// a process with an edge and no --edge-id gets a random one here, so that
// its spans and the entries it appends name the same edge.
func (t *tracingFlags) setup(ctx context.Context, cfg *node.Config, log *slog.Logger) (func(context.Context) error, error) {
	tc := tracing.Config{Endpoint: t.endpoint, SampleRatio: t.sample, Version: version,
		Env: os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""}
	if t.endpoint != "" {
		if u, err := url.Parse(t.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageError{fmt.Errorf("--otlp-endpoint (NATTER_OTLP_ENDPOINT): %q is not an http(s) URL", t.endpoint)}
		}
	}
	if !tc.Env && tc.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	tc.Service = "natter-" + cfg.Mode.String()
	if cfg.Mode != node.ModeWorker {
		if cfg.Edge.EdgeID == "" {
			var b [6]byte
			_, _ = rand.Read(b[:])
			cfg.Edge.EdgeID = "e" + hex.EncodeToString(b[:])
		}
		tc.Instance = cfg.Edge.EdgeID
	}
	return tracing.Setup(ctx, tc, log)
}
