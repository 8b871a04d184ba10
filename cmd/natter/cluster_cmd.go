package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/natter-im/natter/cmd/natter/cluster"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/jetstream/natsauth"
)

const clusterUsage = "natter cluster up|down|status [flags]"

// clusterMarker marks a directory as made by natter cluster up, so that up
// and down only ever remove directories of their own.
const clusterMarker = ".natter-cluster"

// runCluster implements "natter cluster up|down|status": a local
// multi-process topology on loopback, run from this binary (see
// cluster.Start and docs/operations.md, "Local cluster").
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("usage: %s", clusterUsage)}
	}
	switch args[0] {
	case "up":
		return clusterUp(ctx, args[1:], stdout, stderr)
	case "down":
		return clusterDown(ctx, args[1:], stdout, stderr)
	case "status":
		return clusterStatus(args[1:], stdout, stderr)
	case "help", "--help", "-h", "-help":
		fmt.Fprintf(stdout, "usage: %s\n\n  up      start a local cluster in the background\n  down    stop it and remove its directory\n  status  list its processes\n", clusterUsage)
		return nil
	}
	return usageError{fmt.Errorf("unknown cluster command %q (usage: %s)", args[0], clusterUsage)}
}

func defaultClusterDir() string { return filepath.Join(os.TempDir(), "natter-cluster") }

func clusterDirFlag(fs *cli.FlagSet, dir *string) {
	fs.String(dir, "dir", "NATTER_CLUSTER_DIR", defaultClusterDir(), "directory of the cluster's data, logs and state (cluster.json)")
}

func clusterUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter cluster up", "natter cluster up [flags]", stdout)
	var dir, binary string
	var natsNodes, edges, replicas int
	var combined, secure bool
	var readyTimeout time.Duration
	clusterDirFlag(fs, &dir)
	fs.Int(&natsNodes, "nats-nodes", "NATTER_CLUSTER_NATS_NODES", 3, "nats-server nodes (streams at min(3, nodes) replicas)", cli.Min(1))
	fs.Int(&edges, "edges", "NATTER_CLUSTER_EDGES", 2, "edge processes", cli.Min(1))
	fs.Int(&replicas, "worker-replicas", "NATTER_CLUSTER_WORKER_REPLICAS", 2, "worker processes per role (with --combined: processes running every role)", cli.Min(1))
	fs.Bool(&combined, "combined", "NATTER_CLUSTER_COMBINED", false, "run every role in each worker process instead of one process per role")
	fs.Bool(&secure, "nats-auth", "NATTER_CLUSTER_NATS_AUTH", true, "NATS requires TLS and a user nkey per tier (edge, worker, service, admin) with its permissions; a dev CA, the certificate and the seeds are made under <dir>/auth (false = plain NATS, no credentials)")
	fs.String(&binary, "binary", "NATTER_CLUSTER_BINARY", "", "natter binary the processes run (empty = this one)")
	fs.Duration(&readyTimeout, "ready-timeout", "NATTER_CLUSTER_READY_TIMEOUT", 2*time.Minute, "wait for each process (and the NATS cluster) to be ready", cli.Positive[time.Duration]())
	if err := parse(fs, args); err != nil {
		return err
	}
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cluster up: own binary: %w (set --binary)", err)
		}
		binary = exe
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	if err := prepareClusterDir(dir, stderr); err != nil {
		return err
	}

	// A closed terminal or output pipe must not kill up half-way: the
	// processes it started would run with no state file to stop them by.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	ctx, stop := signals(ctx, stderr)
	defer stop()
	c, err := cluster.Start(ctx, cluster.Options{
		Binary: binary, Dir: dir, NATSNodes: natsNodes, Edges: edges, WorkerReplicas: replicas,
		Combined: combined, Secure: secure, Detach: true, ReadyTimeout: readyTimeout, StatePath: cluster.StatePath(dir), Log: stderr,
	})
	if err != nil {
		return fmt.Errorf("cluster up: %w", err)
	}
	if err := c.WriteState(cluster.StatePath(dir)); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(sctx)
		return err
	}
	st := c.State()
	printProcs(stdout, st, false)
	fmt.Fprintf(stdout, "\nNATS:     %s\n", st.NATSURL)
	if st.AuthDir != "" {
		fmt.Fprintf(stdout, "          TLS (CA %s) and a user nkey per tier: %s/<edge|worker|service|admin>.nk\n", c.CAFile(), st.AuthDir)
		fmt.Fprintf(stdout, "          natter services --nats-url %s --nats-tls-ca %s --nats-nkey %s\n", st.NATSURL, c.CAFile(), c.SeedFile(natsauth.TierAdmin))
		fmt.Fprintf(stdout, "          nats --server %s --tlsca %s --nkey %s stream ls\n", st.NATSURL, c.CAFile(), c.SeedFile(natsauth.TierAdmin))
	}
	fmt.Fprintf(stdout, "MongoDB:  %s\n", st.MongoURI)
	fmt.Fprintf(stdout, "Edges:    %s\n", strings.Join(st.EdgeURLs, " "))
	fmt.Fprintf(stdout, "Data:     %s (logs in %s)\n", dir, filepath.Join(dir, "logs"))
	fmt.Fprintf(stdout, "Token:    natter token --jwt-secret-file %s --user alice\n", st.SecretFile)
	fmt.Fprintf(stdout, "          example for alice (24h): %s\n", c.Token("alice"))
	fmt.Fprintf(stdout, "Status:   natter cluster status --dir %s\n", dir)
	fmt.Fprintf(stdout, "Stop:     natter cluster down --dir %s   (go tool task cluster:down)\n", dir)
	return nil
}

// prepareClusterDir refuses a directory holding a running cluster or
// something else than a cluster, and clears a stale cluster's directory.
func prepareClusterDir(dir string, stderr io.Writer) error {
	st, err := cluster.LoadState(cluster.StatePath(dir))
	switch {
	case err == nil:
		if live := st.Live(); len(live) > 0 {
			return usageError{fmt.Errorf("cluster up: %s holds a running cluster (%d of %d processes alive); see natter cluster status --dir %s, stop it with natter cluster down --dir %s",
				dir, len(live), len(st.Procs), dir, dir)}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return writeMarker(dir)
	}
	if err != nil {
		return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, clusterMarker)); err != nil {
			return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %s is not empty and is not a natter cluster directory; choose another", dir)}
		}
		fmt.Fprintf(stderr, "cluster: removing the stopped cluster in %s\n", dir)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("cluster up: %w", err)
		}
	}
	return writeMarker(dir)
}

func writeMarker(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	if err := os.WriteFile(filepath.Join(dir, clusterMarker), nil, 0o644); err != nil {
		return usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	return nil
}

func clusterDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter cluster down", "natter cluster down [flags]", stdout)
	var dir string
	var keep bool
	var timeout time.Duration
	clusterDirFlag(fs, &dir)
	fs.Bool(&keep, "keep", "NATTER_CLUSTER_KEEP", false, "keep the directory (data and logs) after stopping")
	fs.Duration(&timeout, "stop-timeout", "NATTER_CLUSTER_STOP_TIMEOUT", time.Minute, "wait for the processes to exit after SIGTERM before SIGKILL", cli.Positive[time.Duration]())
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := loadClusterState(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = st.Stop(ctx, func(r cluster.StopResult) {
		switch r.Was {
		case "not running":
			fmt.Fprintf(stdout, "%-24s pid %-8d was not running\n", r.Proc.Name, r.Proc.PID)
		default:
			fmt.Fprintf(stdout, "%-24s pid %-8d %s in %v\n", r.Proc.Name, r.Proc.PID, r.Was, r.Took.Round(time.Millisecond))
		}
	})
	if err != nil {
		return fmt.Errorf("cluster down: %w", err)
	}
	if keep {
		fmt.Fprintf(stdout, "kept %s\n", st.Dir)
		return nil
	}
	if err := os.RemoveAll(st.Dir); err != nil {
		return fmt.Errorf("cluster down: %w", err)
	}
	fmt.Fprintf(stdout, "removed %s\n", st.Dir)
	return nil
}

func clusterStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter cluster status", "natter cluster status [flags]", stdout)
	var dir string
	clusterDirFlag(fs, &dir)
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := loadClusterState(dir)
	if err != nil {
		return err
	}
	running := printProcs(stdout, st, true)
	fmt.Fprintf(stdout, "\n%d of %d processes running; NATS %s; MongoDB %s\n", running, len(st.Procs), st.NATSURL, st.MongoURI)
	return nil
}

func loadClusterState(dir string) (*cluster.State, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): %v", err)}
	}
	st, err := cluster.LoadState(cluster.StatePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{fmt.Errorf("--dir (NATTER_CLUSTER_DIR): no cluster in %s (natter cluster up --dir %s starts one)", dir, dir)}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// printProcs writes the process table; with state, a column saying whether
// each process runs, and the pid it runs as now (a process started again by
// hand with the same arguments has another). It returns how many run.
func printProcs(w io.Writer, st *cluster.State, state bool) (running int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if state {
		fmt.Fprintln(tw, "NAME\tKIND\tPID\tSTATE\tADDRESS\tLOG")
	} else {
		fmt.Fprintln(tw, "NAME\tKIND\tPID\tADDRESS\tLOG")
	}
	for _, p := range st.Procs {
		if state {
			s, pid := "exited", strconv.Itoa(p.PID)
			if pids := p.PIDs(); len(pids) > 0 {
				s = "running"
				running++
				pid = strings.Trim(strings.Join(strings.Fields(fmt.Sprint(pids)), ","), "[]")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Kind, pid, s, procAddress(p), p.LogPath)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Name, p.Kind, p.PID, procAddress(p), p.LogPath)
		}
	}
	tw.Flush()
	return running
}

func procAddress(p cluster.ProcState) string {
	switch p.Kind {
	case cluster.KindNATS:
		s := "nats://" + p.Addr + " monitor http://" + p.HTTP
		if c, ok := p.Ports["cluster"]; ok {
			s += fmt.Sprintf(" routes :%d", c)
		}
		return s
	case cluster.KindStore:
		return "mongodb://" + p.Addr + "/"
	case cluster.KindEdge:
		return "http://" + p.Addr + " ws://" + p.Addr + protocol.Path
	default:
		return "admin http://" + p.Addr + " roles " + strings.Join(p.Roles, ",")
	}
}
