package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/journey"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// runTrace implements "natter trace <conv>/<seq>": one message's journey
// (appended, archived, delivered, read) from what natter keeps anyway.
func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter trace", "natter trace [flags] <conv>/<seq>   (or: <conv> <seq>)", stdout)
	var common commonFlags
	common.registerConn(fs, "nats://127.0.0.1:4222", "NATS URL(s), comma-separated (default: the embedded server of natter dev)")
	var format string
	var maxMembers int
	var timeout time.Duration
	fs.String(&format, "format", "NATTER_TRACE_FORMAT", "text", "text (one fact a line, exact or a bound) or json")
	fs.Int(&maxMembers, "max-members", "NATTER_TRACE_MAX_MEMBERS", journey.DefaultMaxMembers, "read the delivered and read cursors of at most this many members", cli.Min(1))
	fs.Duration(&timeout, "timeout", "NATTER_TRACE_TIMEOUT", 10*time.Second, "bound of the whole look-up", cli.Positive[time.Duration]())
	if err := fs.Parse(args, true); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("--format (NATTER_TRACE_FORMAT): %q is not text or json", format)}
	}
	conv, seq, err := traceTarget(fs.Args())
	if err != nil {
		return usageError{err}
	}
	var cfg node.Config
	common.apply(&cfg)
	nc, err := dialNATS(cfg, "natter-trace")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	log, err := msglog.New(ctx, nc, js, msglog.Config{})
	if err != nil {
		return err
	}
	defer log.Close()
	rep, err := journey.Trace(ctx, journey.Source{JS: js, Log: log, Convs: convapi.NewClient(nc, timeout), MaxMembers: maxMembers}, conv, seq)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

// traceTarget reads the message to trace: "<conv>/<seq>", or "<conv>" "<seq>".
func traceTarget(args []string) (conv string, seq uint64, err error) {
	var s string
	switch len(args) {
	case 1:
		var ok bool
		if conv, s, ok = strings.Cut(args[0], "/"); !ok {
			return "", 0, fmt.Errorf("trace: %q is not <conv>/<seq>", args[0])
		}
	case 2:
		conv, s = args[0], args[1]
	default:
		return "", 0, fmt.Errorf("trace: want one message, <conv>/<seq> (got %d arguments)", len(args))
	}
	if err := subjects.ValidID(conv); err != nil {
		return "", 0, fmt.Errorf("trace: conversation %q: %w", conv, err)
	}
	if seq, err = strconv.ParseUint(s, 10, 64); err != nil || seq == 0 {
		return "", 0, fmt.Errorf("trace: seq %q is not a positive integer", s)
	}
	return conv, seq, nil
}
