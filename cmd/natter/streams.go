package main

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/streams"
)

const streamsUsage = "natter streams apply [flags]"

// runStreams implements "natter streams apply".
func runStreams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
		fmt.Fprintf(stdout, "usage: %s\n\n  apply   create or update every stream, consumer and KV bucket (natter streams apply --help)\n", streamsUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "apply" {
		return usageError{fmt.Errorf("usage: %s", streamsUsage)}
	}
	fs := newFlags("natter streams apply", "natter streams apply --nats-url URL [flags]", stdout)
	var common commonFlags
	common.register(fs, node.ModeEdge)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if common.natsURL == "" {
		return usageError{fmt.Errorf("--nats-url (NATTER_NATS_URL): required")}
	}
	var cfg node.Config
	common.apply(&cfg)
	nc, err := dialNATS(cfg, "natter-streams-apply")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	changes, err := streams.Apply(ctx, js, cfg.Streams)
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	fmt.Fprintf(stdout, "%d change(s)\n", len(changes))
	return nil
}

// dialNATS connects an operator command to NATS with the connection
// settings of cfg.
func dialNATS(cfg node.Config, name string) (*nats.Conn, error) {
	auth, err := node.NATSAuthOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{nats.Name(name)}, auth...)
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, &node.SettingError{Setting: node.SettingNATSURL, Err: err}
	}
	return nc, nil
}
