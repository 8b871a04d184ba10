// Command natter runs the natter messaging backend: everything in one process
// (natter dev), or one tier per process (natter edge, natter worker), plus
// operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/natter-im/natter/bench"
	"github.com/natter-im/natter/internal/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `natter: an instant-messaging backend on NATS JetStream and MongoDB

usage: natter <command> [flags]

commands:
  dev             everything in one process (embedded NATS and store unless URLs are set)
  edge            the WebSocket/REST edge tier
  worker          worker roles (--roles conversations,persist,fanout,events,ingest,api,thumbs,attachgc,push)
  streams apply   create or update every stream, consumer and KV bucket
  nats            one nats-server node with JetStream (embedded; for local clusters)
  nats-auth       the tiers' NATS nkeys and the server configuration of their permissions
  store           a standalone MongoDB-compatible store (embedded FerretDB, SQLite)
  cluster         a local multi-process cluster: cluster up|down|status
  services        list every running natter process and role with its stats
  trace           one message's journey: appended, archived, delivered, read (trace <conv>/<seq>)
  token           mint a client token (dev signing key or --jwt-secret)
  admin           revoke tokens, ban and unban users (admin revoke|ban|unban)
  bench           load generator and benchmarks (natter bench --help)
  backup          full or incremental backup of the streams and the store (backup verify|list)
  restore         restore a backup into an empty deployment
  plan            capacity plan: replicas per role, edges, NATS and MongoDB sizing for a load
  version         print the version

Run "natter <command> --help" for the flags of a command.
`

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "dev":
		err = runNode(ctx, node.ModeDev, args[1:], stdout, stderr)
	case "edge":
		err = runNode(ctx, node.ModeEdge, args[1:], stdout, stderr)
	case "worker":
		err = runNode(ctx, node.ModeWorker, args[1:], stdout, stderr)
	case "streams":
		err = runStreams(ctx, args[1:], stdout, stderr)
	case "token":
		err = runToken(args[1:], stdout, stderr)
	case "admin":
		err = runAdmin(ctx, args[1:], stdout, stderr)
	case "nats":
		err = runNATS(ctx, args[1:], stdout, stderr)
	case "nats-auth":
		err = runNATSAuth(ctx, args[1:], stdout, stderr)
	case "store":
		err = runStore(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = runCluster(ctx, args[1:], stdout, stderr)
	case "bench":
		ctx, stop := signals(ctx, stderr)
		defer stop()
		return bench.Main(ctx, args[1:], stdout, stderr)
	case "plan":
		err = runPlan(args[1:], stdout, stderr)
	case "services":
		err = runServices(ctx, args[1:], stdout, stderr)
	case "trace":
		err = runTrace(ctx, args[1:], stdout, stderr)
	case "backup":
		ctx, stop := signals(ctx, stderr)
		defer stop()
		err = runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		ctx, stop := signals(ctx, stderr)
		defer stop()
		err = runRestore(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "natter", version)
		return exitOK
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "natter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

// usageError is a bad command line.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var se *node.SettingError
	var ue usageError
	if errors.As(err, &se) || errors.As(err, &ue) {
		fmt.Fprintf(stderr, "natter: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "natter: %v\n", err)
	return exitFailure
}

// repeatWindow is how long after the first SIGINT/SIGTERM another one counts
// as the same stop request: Ctrl-C in a terminal reaches natter twice under
// "go tool task run", once from the terminal and once passed on by go-task.
const repeatWindow = time.Second

// signals returns a context cancelled by the first SIGINT/SIGTERM; a second
// one, repeatWindow or more after the first, exits the process at once.
func signals(ctx context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		first := time.Now()
		for sig := range ch {
			if time.Since(first) < repeatWindow {
				continue
			}
			fmt.Fprintf(stderr, "natter: second signal (%v): forcing exit\n", sig)
			os.Exit(exitFailure)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
