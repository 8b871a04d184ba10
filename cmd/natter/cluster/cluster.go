package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/natsauth"
)

// ClusterName is the NATS cluster name of every node.
const ClusterName = "natter"

// defaultStopTimeout bounds [Cluster.Stop] when its context has no deadline.
const defaultStopTimeout = time.Minute

// Cluster is a running local topology. NATS, Store and Edges are fixed at
// [Start]; Workers grows with [Cluster.AddWorker] (use [Cluster.Procs] while
// other goroutines may add workers).
type Cluster struct {
	// Opts are the options with their defaults filled in.
	Opts    Options
	NATS    []*Proc
	Store   *Proc
	Edges   []*Proc
	Workers []*Proc

	secretFile string

	mu      sync.Mutex // guards Workers and next
	next    map[string]int
	started time.Time
}

// Start starts a cluster: the NATS nodes and the store (waiting until the
// JetStream meta group has a leader and every node is a current peer), then
// "natter streams apply --replicas StreamReplicas", then the workers and the
// edges, and waits until every process is ready. If anything fails it stops
// what it started and returns the error, which names the process and carries
// the tail of its log.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, fmt.Errorf("cluster: dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("cluster: dir: %w", err)
	}
	c := &Cluster{Opts: o, secretFile: filepath.Join(o.Dir, "jwt.secret"), next: map[string]int{}, started: time.Now()}
	if err := os.WriteFile(c.secretFile, []byte(o.JWTSecret), 0o600); err != nil {
		return nil, fmt.Errorf("cluster: jwt secret: %w", err)
	}
	if err := c.prepareAuth(); err != nil {
		return nil, err
	}
	if err := c.plan(); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
		return nil, err
	}
	return c, nil
}

// plan fixes every process's name, ports, arguments, data dir and log.
func (c *Cluster) plan() error {
	o := c.Opts
	nWorkers := o.WorkerReplicas
	if !o.Combined {
		nWorkers *= len(o.Roles)
	}
	ports, err := freePorts(3*o.NATSNodes + 1 + o.Edges + nWorkers)
	if err != nil {
		return err
	}
	take := func() int { p := ports[0]; ports = ports[1:]; return p }

	routes := make([]string, o.NATSNodes)
	type natsPorts struct{ client, http, cluster int }
	np := make([]natsPorts, o.NATSNodes)
	for i := range np {
		np[i] = natsPorts{take(), take(), take()}
		routes[i] = "nats://" + hostPort(np[i].cluster)
	}
	for i, pp := range np {
		name := fmt.Sprintf("nats-%d", i+1)
		dir := filepath.Join(o.Dir, name)
		args := []string{"nats", "--name", name, "--host", Host, "--port", strconv.Itoa(pp.client),
			"--http-port", strconv.Itoa(pp.http), "--store", dir}
		ports := map[string]int{"client": pp.client, "http": pp.http}
		if o.NATSNodes > 1 {
			args = append(args, "--cluster-name", ClusterName, "--cluster-port", strconv.Itoa(pp.cluster), "--routes", strings.Join(routes, ","))
			ports["cluster"] = pp.cluster
		}
		if o.SyncInterval > 0 {
			args = append(args, "--sync-interval", o.SyncInterval.String())
		}
		args = append(args, c.natsArgs()...)
		p := c.newProc(name, KindNATS, append(args, o.NATSArgs...))
		p.Addr, p.HTTP, p.Dir, p.Ports = hostPort(pp.client), hostPort(pp.http), dir, ports
		c.NATS = append(c.NATS, p)
	}

	sp := take()
	sdir := filepath.Join(o.Dir, "store")
	c.Store = c.newProc("store", KindStore, []string{"store", "--listen", hostPort(sp), "--dir", sdir})
	c.Store.Addr, c.Store.Dir, c.Store.Ports = hostPort(sp), sdir, map[string]int{"listen": sp}

	if o.Combined {
		for range o.WorkerReplicas {
			c.Workers = append(c.Workers, c.workerProc(c.workerName(o.Roles), o.Roles, take()))
		}
	} else {
		for _, role := range o.Roles {
			for range o.WorkerReplicas {
				c.Workers = append(c.Workers, c.workerProc(c.workerName([]string{role}), []string{role}, take()))
			}
		}
	}
	for i := range o.Edges {
		port := take()
		p := c.newProc(fmt.Sprintf("edge-%d", i+1), KindEdge, append([]string{"edge", "--nats-url", c.NATSURL(),
			"--http", hostPort(port), "--jwt-secret-file", c.secretFile, "--replicas", strconv.Itoa(o.StreamReplicas)}, append(c.tierArgs(natsauth.TierEdge), o.EdgeArgs...)...))
		p.Addr, p.HTTP, p.Ports = hostPort(port), hostPort(port), map[string]int{"http": port}
		c.Edges = append(c.Edges, p)
	}
	return nil
}

// workerName is "worker-<role>-<n>" for a one-role process and
// "worker-<n>" for one with several roles; c.mu or exclusive access held.
func (c *Cluster) workerName(roles []string) string {
	prefix := "worker"
	if len(roles) == 1 {
		prefix += "-" + roles[0]
	}
	c.next[prefix]++
	return fmt.Sprintf("%s-%d", prefix, c.next[prefix])
}

func (c *Cluster) workerProc(name string, roles []string, port int) *Proc {
	o := c.Opts
	p := c.newProc(name, KindWorker, append([]string{"worker", "--nats-url", c.NATSURL(), "--mongo-uri", c.MongoURI(),
		"--roles", strings.Join(roles, ","), "--admin", hostPort(port), "--replicas", strconv.Itoa(o.StreamReplicas)}, append(c.tierArgs(natsauth.TierWorker), o.WorkerArgs...)...))
	p.Addr, p.HTTP, p.Roles, p.Ports = hostPort(port), hostPort(port), append([]string(nil), roles...), map[string]int{"admin": port}
	return p
}

func (c *Cluster) newProc(name, kind string, args []string) *Proc {
	return &Proc{
		Name: name, Kind: kind, Args: args,
		LogPath: filepath.Join(c.Opts.Dir, "logs", name+".log"),
		binary:  c.Opts.Binary, env: c.Opts.Env, detach: c.Opts.Detach, readyTimeout: c.Opts.ReadyTimeout,
	}
}

func (c *Cluster) start(ctx context.Context) error {
	o := c.Opts
	first := append(append([]*Proc(nil), c.NATS...), c.Store)
	if err := c.launchAndWait(ctx, first); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "cluster: waiting for the JetStream meta group of %d nodes\n", len(c.NATS))
	if err := c.WaitNATS(ctx); err != nil {
		return err
	}
	if err := c.applyStreams(ctx); err != nil {
		return err
	}
	rest := append(append([]*Proc(nil), c.Workers...), c.Edges...)
	return c.launchAndWait(ctx, rest)
}

// launchAndWait starts procs at once and waits until all are ready.
func (c *Cluster) launchAndWait(ctx context.Context, procs []*Proc) error {
	var launchErr error
	for _, p := range procs {
		fmt.Fprintf(c.Opts.Log, "cluster: starting %s: natter %s\n", p.Name, strings.Join(p.Args, " "))
		if launchErr = p.launch(); launchErr != nil {
			break
		}
	}
	if c.Opts.StatePath != "" {
		if err := c.WriteState(c.Opts.StatePath); err != nil {
			return err
		}
	}
	if launchErr != nil {
		return launchErr
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			start := time.Now()
			if errs[i] = p.WaitReady(ctx); errs[i] == nil {
				fmt.Fprintf(c.Opts.Log, "cluster: %s ready (pid %d, %v)\n", p.Name, p.PID(), time.Since(start).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyStreams runs "natter streams apply" until it succeeds: a meta group
// just formed may answer "temporarily unavailable" for a moment.
func (c *Cluster) applyStreams(ctx context.Context) error {
	o := c.Opts
	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	logPath := filepath.Join(o.Dir, "logs", "streams-apply.log")
	args := append([]string{"streams", "apply", "--nats-url", c.NATSURL(), "--replicas", strconv.Itoa(o.StreamReplicas)}, c.tierArgs(natsauth.TierAdmin)...)
	args = append(args, o.StreamsArgs...)
	fmt.Fprintf(o.Log, "cluster: natter %s\n", strings.Join(args, " "))
	for attempt := 1; ; attempt++ {
		err := runLogged(ctx, o, logPath, args)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: streams apply (attempt %d): %w; log %s:\n%s", attempt, err, logPath, tail(logPath, 20))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// runLogged runs the natter binary with args to completion, appending its
// output to logPath.
func runLogged(ctx context.Context, o Options, logPath string, args []string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s natter cluster: natter %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.SysProcAttr = sysProcAttr(false)
	return cmd.Run()
}

// NATSURL is the comma-separated client URLs of every NATS node.
func (c *Cluster) NATSURL() string {
	urls := make([]string, len(c.NATS))
	for i, p := range c.NATS {
		urls[i] = "nats://" + p.Addr
	}
	return strings.Join(urls, ",")
}

// MongoURI is the mongodb:// URI of the store.
func (c *Cluster) MongoURI() string { return "mongodb://" + c.Store.Addr + "/" }

// EdgeURLs are the WebSocket URLs of the edges (ws://127.0.0.1:P/v1/ws).
func (c *Cluster) EdgeURLs() []string {
	urls := make([]string, len(c.Edges))
	for i, p := range c.Edges {
		urls[i] = "ws://" + p.Addr + protocol.Path
	}
	return urls
}

// SecretFile is the file holding the edges' HS256 secret (key id
// "default"): "natter token --jwt-secret-file <it> --user U" mints a token.
func (c *Cluster) SecretFile() string { return c.secretFile }

// Token is a 24h HS256 token for user signed with Options.JWTSecret; empty
// if user is not a valid user id.
func (c *Cluster) Token(user string) string {
	key := auth.Key{ID: "default", Alg: auth.AlgHS256, Secret: []byte(c.Opts.JWTSecret)}
	tok, err := auth.Mint(key, nil, auth.MintClaims{User: user, TTL: 24 * time.Hour})
	if err != nil {
		return ""
	}
	return tok
}

// Procs is every process: NATS nodes, the store, edges, workers.
func (c *Cluster) Procs() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]*Proc(nil), c.NATS...)
	out = append(out, c.Store)
	out = append(out, c.Edges...)
	return append(out, c.Workers...)
}

func (c *Cluster) workers() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Proc(nil), c.Workers...)
}

// AddWorker starts one more worker process with roles (none = every role
// of Options.Roles) on new ports and waits until it is ready. It joins
// Workers, so [Cluster.Stop] stops it. If it fails to become ready it is
// killed and not added.
func (c *Cluster) AddWorker(ctx context.Context, roles ...string) (*Proc, error) {
	return c.AddWorkerEnv(ctx, nil, roles...)
}

// AddWorkerEnv is [Cluster.AddWorker] with extra environment (KEY=value)
// for that process only, after Options.Env: the chaos suite (test/chaos)
// starts a persist replica with a NATTER_FAULT this way. A restart of the
// process ([Proc.Start]) keeps the environment.
func (c *Cluster) AddWorkerEnv(ctx context.Context, env []string, roles ...string) (*Proc, error) {
	if len(roles) == 0 {
		roles = c.Opts.Roles
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	p := c.workerProc(c.workerName(roles), roles, ports[0])
	c.mu.Unlock()
	p.env = append(append([]string(nil), c.Opts.Env...), env...)
	shown := ""
	if len(env) > 0 {
		shown = strings.Join(env, " ") + " "
	}
	fmt.Fprintf(c.Opts.Log, "cluster: starting %s: %snatter %s\n", p.Name, shown, strings.Join(p.Args, " "))
	if err := p.Start(ctx); err != nil {
		p.Kill()
		return nil, err
	}
	c.mu.Lock()
	c.Workers = append(c.Workers, p)
	c.mu.Unlock()
	return p, nil
}

// Stop sends SIGTERM to every process that runs, in order: edges and
// workers, then the store, then the NATS nodes, each group at once and
// waited for; what is left at ctx's deadline (1m when ctx has none) is
// killed. It returns the errors of unclean exits.
func (c *Cluster) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStopTimeout)
		defer cancel()
	}
	var errs []error
	for _, group := range [][]*Proc{append(append([]*Proc(nil), c.Edges...), c.workers()...), {c.Store}, c.NATS} {
		errs = append(errs, stopAll(ctx, group))
	}
	return errors.Join(errs...)
}

func stopAll(ctx context.Context, procs []*Proc) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		if p == nil {
			continue
		}
		wg.Go(func() { errs[i] = p.Stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
