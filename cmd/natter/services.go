package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/workers/discovery"
)

// runServices implements "natter services": every running natter process
// and role (micro services on the NATS the flags name) with its stats.
func runServices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter services", "natter services [--nats-url URL] [flags]", stdout)
	var common commonFlags
	common.registerConn(fs, "nats://127.0.0.1:4222", "NATS URL(s), comma-separated (default: the embedded server of natter dev)")
	var wait time.Duration
	var format string
	fs.Duration(&wait, "wait", "NATTER_SERVICES_WAIT", time.Second, "how long to collect the answers of running instances", cli.Positive[time.Duration]())
	fs.String(&format, "format", "NATTER_SERVICES_FORMAT", "text", "text (a table) or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("--format (NATTER_SERVICES_FORMAT): %q is not text or json", format)}
	}
	var cfg node.Config
	common.apply(&cfg)
	nc, err := dialNATS(cfg, "natter-services")
	if err != nil {
		return err
	}
	defer nc.Close()
	list, err := discovery.List(ctx, nc, wait)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	printServices(stdout, list, time.Now())
	return nil
}

// printServices writes the instances as a table, one line each.
func printServices(w io.Writer, list []discovery.Instance, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tVERSION\tHOST\tPID\tUPTIME\tENDPOINTS\tREQUESTS\tERRORS\tSTATS")
	names := map[string]bool{}
	for _, in := range list {
		names[in.Name] = true
		uptime := "-"
		if !in.Started.IsZero() {
			uptime = now.Sub(in.Started).Round(time.Second).String()
		}
		req, errs := in.Requests()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", in.Name, in.ID, in.Version,
			orDash(in.Metadata["host"]), orDash(in.Metadata["pid"]), uptime, len(in.Endpoints), req, errs, statsOf(in))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d instance(s) of %d service(s)\n", len(list), len(names))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statsOf renders the data of an instance's status endpoint (a runner's or
// an edge's stats) as sorted key=value pairs; "-" when there is none.
func statsOf(in discovery.Instance) string {
	for _, e := range in.Endpoints {
		if e.Name != "status" || len(e.Data) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(e.Data, &m) != nil || len(m) == 0 {
			return "-"
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			switch v := m[k].(type) {
			case float64:
				parts = append(parts, k+"="+strconv.FormatFloat(v, 'f', -1, 64))
			case string:
				if v != "" && k != "role" {
					parts = append(parts, k+"="+strconv.Quote(v))
				}
			case bool:
				parts = append(parts, k+"="+strconv.FormatBool(v))
			}
		}
		return strings.Join(parts, " ")
	}
	return "-"
}
